"""A MariaDB server for the Kubeflow Pipelines backend tests (issue #21): Debian's ``mariadb-server``
(``make system``) run as a process of the harness, with a data folder of its own in the harness's
workdir, listening on TCP only where asked. KFP's API server stores pipelines, runs and tasks in
it (KFP 2.17 on PostgreSQL fails at start; MariaDB is what upstream deploys), and ML Metadata
its lineage store.

It starts with ``mariadb-install-db`` into an empty folder, then ``mariadbd`` as root with no
option files (``--no-defaults``: the machine's ``/etc/mysql`` is never read), a socket under
``/tmp`` (a unix socket path has at most 108 bytes; pytest's folders are longer) and one
password-protected user, created over that socket, for the programs that connect over TCP.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from procs import HarnessError, Process, free_port, spawn, wait

PACKAGE = "mariadb-server"
USER = "kfp"


def _program(name: str) -> str:
    found = shutil.which(name, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if not found:
        raise HarnessError(f"{name} is missing: run `make system` (Debian package {PACKAGE})")
    return found


@dataclass
class MariaDB:
    """A running server. :meth:`start` it; :meth:`stop` it (its data goes with the workdir)."""

    process: Process
    host: str
    port: int
    socket: Path
    user: str
    password: str

    @classmethod
    def start(cls, workdir: Path, *, host: str = "127.0.0.1", timeout: float = 120) -> "MariaDB":
        server, install, client = _program("mariadbd"), _program("mariadb-install-db"), _program("mariadb")
        data = workdir / "data"
        workdir.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([install, "--no-defaults", f"--datadir={data}", "--user=root",
                               "--auth-root-authentication-method=socket", "--skip-test-db"],
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise HarnessError(f"mariadb-install-db failed: {(proc.stderr or proc.stdout).strip()[-600:]}")
        sock, port = Path(f"/tmp/mindzoo-mariadb-{os.getpid()}.sock"), free_port(host)
        process = spawn("mariadbd", [server, "--no-defaults", f"--datadir={data}", "--user=root",
                                     f"--socket={sock}", f"--port={port}", f"--bind-address={host}",
                                     "--skip-name-resolve", f"--pid-file={workdir / 'mariadbd.pid'}",
                                     "--innodb-buffer-pool-size=64M", "--max-connections=200"],
                        logs=workdir, cwd=workdir)
        db = cls(process, host, port, sock, USER, secrets.token_hex(12))
        try:
            wait("MariaDB's socket", sock.exists, timeout, process)
            wait("MariaDB answering", lambda: db._answers(client), timeout, process)
            db.sql(f"CREATE USER '{USER}'@'%' IDENTIFIED BY '{db.password}'; "
                   f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'%'; FLUSH PRIVILEGES;", client=client)
        except BaseException:
            db.stop()
            raise
        return db

    def sql(self, statement: str, *, client: str | None = None) -> str:
        """Run SQL as root over the socket; its output without column names."""
        proc = subprocess.run([client or _program("mariadb"), "--no-defaults", f"--socket={self.socket}", "-uroot",
                               "--batch", "--skip-column-names", "-e", statement],
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise HarnessError(f"MariaDB refused {statement[:60]!r}: {proc.stderr.strip()}")
        return proc.stdout

    def _answers(self, client: str) -> bool:
        return subprocess.run([client, "--no-defaults", f"--socket={self.socket}", "-uroot", "-e", "SELECT 1"],
                              capture_output=True, timeout=30).returncode == 0

    def stop(self) -> None:
        self.process.stop(timeout=60)
        self.socket.unlink(missing_ok=True)
