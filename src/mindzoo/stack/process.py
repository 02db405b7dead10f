"""Start, watch and stop the local stack's server processes.

Servers run detached (their own session) so they outlive the ``stack up``
command; a JSON record per service (pid, ports, log) lets ``status`` and
``down`` find them again from any later process.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from mindzoo.errors import MindzooError


@dataclass(frozen=True)
class Service:
    name: str
    pid: int
    url: str
    health_url: str
    log: str

    def alive(self) -> bool:
        return pid_alive(self.pid)

    def healthy(self) -> bool:
        return self.alive() and http_ok(self.health_url)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    # A zombie still answers kill(0); treat it as dead.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True if ``url`` answers 2xx; ``unix:///sock`` asks a Docker-style ``/_ping``."""
    if url.startswith("unix://"):
        return _unix_ping(url[len("unix://"):], timeout)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback URL we built
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _unix_ping(path: str, timeout: float) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
            return sock.recv(64).split(b" ")[1:2] == [b"200"]
    except OSError:
        return False


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def spawn(argv: Sequence[str], log: Path, env: Mapping[str, str] | None = None) -> int:
    """Start ``argv`` detached, stdout/stderr appended to ``log``; return its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - argv is built by us, not a shell string
            list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, start_new_session=True,
        )
    return proc.pid


def wait_healthy(service: Service, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not service.alive():
            raise MindzooError(f"{service.name} exited during start-up; see {service.log}: {log_tail(service.log)}")
        if http_ok(service.health_url):
            return
        time.sleep(0.25)
    raise MindzooError(f"{service.name} not healthy after {timeout:.0f}s at {service.health_url}; see {service.log}")


def stop(pid: int, timeout: float = 15.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.1)


def log_tail(path: str | Path, lines: int = 3) -> str:
    try:
        text = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(line.strip() for line in text[-lines:]) or "(empty log)"


def save(service: Service, record_dir: Path) -> None:
    record_dir.mkdir(parents=True, exist_ok=True)
    tmp = record_dir / f".{service.name}.json.tmp"
    tmp.write_text(json.dumps(asdict(service)))
    tmp.replace(record_dir / f"{service.name}.json")


def load(name: str, record_dir: Path) -> Service | None:
    try:
        return Service(**json.loads((record_dir / f"{name}.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None


def forget(name: str, record_dir: Path) -> None:
    (record_dir / f"{name}.json").unlink(missing_ok=True)
