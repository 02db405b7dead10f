"""Processes of the cluster test harness: where its tools are, how it starts and
waits for a server, and the one error it raises (:class:`HarnessError`), so a part
that cannot start fails the tests that need it with the reason, never a skip."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence


class HarnessError(RuntimeError):
    """The cluster (or one of its parts) could not be started or used."""


def cache_bin() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mindzoo"
    return Path(os.environ.get("MINDZOO_CACHE_DIR", default)) / "bin"


#: Built by scripts/build-tools.sh into the cache (`make tools`).
BUILT = ("hyperkube", "kwok", "helm", "coredns", "pause")
#: Debian packages (`make system`, scripts/install-system.sh): program -> package.
SYSTEM = {"etcd": "etcd-server", "containerd": "containerd", "ctr": "containerd", "runc": "runc",
          "iptables": "iptables", "nsenter": "util-linux", "ip": "iproute2", "podman": "podman"}
CNI_DIR = Path("/usr/lib/cni")  # containernetworking-plugins


@dataclass(frozen=True)
class Tools:
    """Paths of the binaries the harness runs."""

    paths: dict[str, Path]

    @classmethod
    def find(cls, *, real_node: bool = False) -> "Tools":
        """Locate every tool a cluster needs (a real node needs more), or raise one error listing
        all that are missing and how to get them."""
        built = BUILT if real_node else ("hyperkube", "kwok", "helm")
        system = SYSTEM if real_node else {"etcd": SYSTEM["etcd"]}
        paths = {name: cache_bin() / name for name in built}
        missing = [f"{name} ({path}): run `make tools` (scripts/build-tools.sh builds it from source)"
                   for name, path in paths.items() if not os.access(path, os.X_OK)]
        for program, package in system.items():
            found = shutil.which(program, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
            if found:
                paths[program] = Path(found)
            else:
                missing.append(f"{program}: run `make system` (Debian package {package})")
        if real_node and not (CNI_DIR / "bridge").exists():
            missing.append(f"CNI plugins ({CNI_DIR}): run `make system` (Debian package containernetworking-plugins)")
        if missing:
            raise HarnessError("the cluster test harness cannot start; missing:\n  " + "\n  ".join(missing))
        return cls(paths)

    def __getattr__(self, name: str) -> Path:
        try:
            return self.paths[name.replace("_", "-")]
        except KeyError:
            raise AttributeError(name) from None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass
class Process:
    """A server the harness started: its handle and log file."""

    name: str
    proc: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def cause(self) -> str:
        """The line of its log that says why it failed: its last error (klog's ``E`` lines, a Go
        ``Error:``, or any line that mentions a failure), without klog's header; else its last line."""
        try:
            lines = [line.strip() for line in self.log.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            return "(no log)"
        errors = [line for line in lines if re.match(r"E\d{4} ", line) or re.search(r"(?i)\b(error|failed|fatal)\b", line)]
        line = (errors or lines or ["(empty log)"])[-1]
        return re.sub(r"^[EWIF]\d{4} [\d:.]+\s+\d+ [\w.-]+:\d+\] ", "", line)[:400]

    def tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 15) -> None:
        if not self.alive():
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def spawn(name: str, argv: Sequence[str], *, logs: Path, cwd: Path, env: dict[str, str] | None = None) -> Process:
    """Start ``argv`` in its own session, output to ``logs/NAME.log``."""
    log = logs / f"{name}.log"
    with log.open("ab") as handle:
        proc = subprocess.Popen([str(a) for a in argv], stdout=handle, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=cwd, env={**os.environ, **(env or {})},
                                start_new_session=True)
    return Process(name, proc, log)


def wait(what: str, check: Callable[[], bool], timeout: float, process: Process | None = None,
         interval: float = 0.3) -> None:
    """Poll ``check`` until true; raise :class:`HarnessError` naming ``what`` (and ``process``'s
    log tail) when ``process`` dies or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise HarnessError(f"{what}: {process.name} exited with {process.proc.returncode}: {process.cause()} "
                               f"(log: {process.log})")
        try:
            if check():
                return
        except HarnessError:
            raise
        except Exception as exc:  # noqa: BLE001 - keep polling; report the last one
            last = exc
        time.sleep(interval)
    log = f"\nlog of {process.name} ({process.log}):\n{process.tail()}" if process else ""
    raise HarnessError(f"{what}: not ready after {timeout:.0f} s (last error: {last}){log}")


def run(argv: Sequence[str | Path], what: str, *, timeout: float = 120, input: bytes | None = None,
        check: bool = True) -> subprocess.CompletedProcess:
    """Run a short command; a failure is a :class:`HarnessError` naming ``what`` and its stderr."""
    try:
        proc = subprocess.run([str(a) for a in argv], capture_output=True, timeout=timeout, input=input)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HarnessError(f"{what}: {exc}") from None
    if check and proc.returncode != 0:
        err = (proc.stderr or proc.stdout).decode(errors="replace").strip().splitlines()
        raise HarnessError(f"{what}: `{' '.join(map(str, argv))}` exited {proc.returncode}: "
                           f"{err[-1] if err else '(no output)'}")
    return proc
