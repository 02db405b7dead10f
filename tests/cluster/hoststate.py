"""What a real node changes on the machine it runs on, recorded before it starts and put
back (or removed) when it stops, so a test run leaves the host as it found it.

* **sysctls**: the kubelet sets ``vm.overcommit_memory=1``, ``kernel.panic=10``,
  ``kernel.panic_on_oops=1`` and a few more at start (its "kernel defaults"), and
  kube-proxy may raise conntrack limits; these are machine-wide, so the old values are
  written back.
* **mounts** under the node's folders (pod volumes, container root filesystems, the
  network namespaces' bind mounts) are unmounted, deepest first.
* **processes** of the node (containerd's shims and the containers they run outlive
  containerd itself) are killed.
* **cgroups** the node's containers got are removed (they are empty once their
  processes are gone).

:func:`leftovers` lists whatever is still there; a test asserts it is empty after a
deliberately failed start.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

#: Machine-wide settings the kubelet (and kube-proxy) may change.
SYSCTLS = ("vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops",
           "kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes", "net.netfilter.nf_conntrack_max")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def read_sysctls(names: Iterable[str] = SYSCTLS) -> dict[str, str]:
    values = {}
    for name in names:
        try:
            values[name] = _sysctl_path(name).read_text().strip()
        except OSError:
            pass  # not on this kernel (e.g. conntrack not loaded): nothing to restore
    return values


def mounts_under(prefixes: Iterable[Path]) -> list[str]:
    """Mount points (this mount namespace) at or below any of ``prefixes``, deepest first."""
    roots = [str(p).rstrip("/") for p in prefixes]
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == r or point.startswith(r + "/") for r in roots):
            found.append(point)
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def netns_names() -> set[str]:
    folder = Path("/run/netns")
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def _mount_ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def _parents() -> dict[int, int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
            except (OSError, ValueError):
                pass
    return parents


def processes_of(markers: Iterable[str]) -> set[int]:
    """Processes whose command line names one of ``markers`` (the node's private folders), and all
    their descendants: containerd's shims re-parent to init, and the containers are their children."""
    markers = tuple(markers)
    parents = _parents()
    roots = set()
    for pid in parents:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(m in cmdline for m in markers) and pid != os.getpid():
            roots.add(pid)
    found, frontier = set(roots), set(roots)
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier and pid not in found}
        found |= frontier
    return found


def kill(pids: set[int], timeout: float = 10) -> set[int]:
    """SIGKILL ``pids``; return those still alive after ``timeout``."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + timeout
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        alive = {pid for pid in alive if Path(f"/proc/{pid}").exists() and not _zombie(pid)}
        time.sleep(0.1)
    return alive


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2] == "Z"
    except (OSError, ValueError, IndexError):
        return True


def cgroups_named(name: str) -> list[Path]:
    """``name``'s folder in every cgroup hierarchy that has it (v1 controllers and the v2 tree)."""
    found = []
    for hierarchy in CGROUP_ROOT.iterdir() if CGROUP_ROOT.is_dir() else ():
        if (hierarchy / name).is_dir():
            found.append(hierarchy / name)
    return found


def remove_cgroups(name: str) -> list[str]:
    """Remove ``name``'s cgroup trees (deepest first); return the ones that could not go."""
    problems = []
    for top in cgroups_named(name):
        for folder in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            try:
                folder.rmdir()
            except OSError:
                pass
        try:
            top.rmdir()
        except OSError as exc:
            problems.append(f"cgroup {top}: {exc.strerror}")
    return problems


@dataclass
class HostState:
    """The machine as it was before a real node started: what to put back and what to check."""

    sysctls: dict[str, str] = field(default_factory=read_sysctls)
    netns: set[str] = field(default_factory=netns_names)

    def save(self, path: Path) -> None:
        """Keep the snapshot beside the node's state, so a later run can put the machine back if this
        process is killed before it can (:func:`clean_stale`)."""
        path.write_text(json.dumps({"sysctls": self.sysctls, "netns": sorted(self.netns)}))

    @classmethod
    def load(cls, path: Path) -> "HostState":
        data = json.loads(path.read_text())
        return cls(sysctls=data["sysctls"], netns=set(data["netns"]))

    def restore_sysctls(self) -> list[str]:
        problems = []
        for name, value in self.sysctls.items():
            path = _sysctl_path(name)
            try:
                if path.read_text().strip() != value:
                    path.write_text(value)
            except OSError as exc:
                problems.append(f"sysctl {name}: cannot restore {value!r}: {exc.strerror}")
        return problems

    def leftovers(self, *, folders: Iterable[Path], markers: Iterable[str], cgroup: str) -> list[str]:
        """Everything of the node still on the machine: an empty list when it was cleaned up."""
        found = [f"sysctl {k}={v} (was {self.sysctls[k]})" for k, v in read_sysctls(self.sysctls).items()
                 if v != self.sysctls[k]]
        found += [f"mount {m}" for m in mounts_under(folders)]
        found += [f"network namespace {n}" for n in sorted(netns_names() - self.netns)]
        found += [f"process {pid}" for pid in sorted(processes_of(markers))]
        found += [f"cgroup {p}" for p in cgroups_named(cgroup)]
        found += [f"folder {p}" for p in folders if p.name.startswith("mindzoo-node-") and p.exists()]
        return found


# ------------------------------------------------------------- a killed run's node

STATE_PREFIX = "mindzoo-node-"  # /var/lib/mindzoo-node-<pid>: a real node's state, named after its owner


def record_pid(state: Path, pid: int) -> None:
    """Note a process the harness started (control plane and node), for :func:`clean_stale`."""
    with (state / "pids").open("a") as handle:
        handle.write(f"{pid}\n")


def _owner_alive(pid: int) -> bool:
    from mindzoo.lease import pid_alive

    return pid_alive(pid) and not _zombie(pid)


def _cwd(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def clean_stale(base: Path = Path("/var/lib")) -> list[str]:
    """Put back what a real node left when its test process was killed before it could stop it (SIGKILL,
    a CI time-out): its processes, mounts, network namespace, cgroups and sysctls. Nodes whose owner still
    runs are left alone. Returns what was cleaned, one line each."""
    cleaned = []
    for state in sorted(base.glob(f"{STATE_PREFIX}*")):
        owner = int(state.name.removeprefix(STATE_PREFIX)) if state.name.removeprefix(STATE_PREFIX).isdigit() else 0
        if not owner or _owner_alive(owner):
            continue
        recorded = {int(x) for x in (state / "pids").read_text().split()} if (state / "pids").is_file() else set()
        workdir = (state / "workdir").read_text().strip() if (state / "workdir").is_file() else ""
        markers = [str(state), *([workdir] if workdir else [])]
        kill({p for p in recorded if _cwd(p) in markers} | processes_of(markers))  # the harness starts all in workdir
        for point in mounts_under([Path(m) for m in markers]):
            subprocess.run(["umount", "--lazy", point], capture_output=True)
        for netns in (f"mzk-{owner}",):
            subprocess.run(["ip", "netns", "delete", netns], capture_output=True)
        subprocess.run(["ip", "link", "delete", f"mzkh{owner}"], capture_output=True)
        remove_cgroups(f"{STATE_PREFIX}{owner}")
        if (state / "host.json").is_file():
            HostState.load(state / "host.json").restore_sysctls()
        for etcd in Path("/dev/shm").glob(f"mindzoo-etcd-{owner}-*"):
            subprocess.run(["rm", "-rf", str(etcd)], capture_output=True)
        subprocess.run(["rm", "-rf", str(state)], capture_output=True)
        cleaned.append(f"cleaned up the real node of process {owner}, which had been killed ({state})")
    return cleaned
