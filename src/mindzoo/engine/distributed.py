"""Data-parallel launch without a rank table: MindSpore's dynamic cluster.

A cluster is one scheduler (``MS_ROLE=MS_SCHED``) plus N workers
(``MS_ROLE=MS_WORKER``, ``MS_NODE_ID=0..N-1``) that share ``MS_SCHED_HOST``,
``MS_SCHED_PORT`` and ``MS_WORKER_NUM``. The same entry point runs

(a) alone (no ``MS_ROLE``): one process, world size 1;
(b) as ``--workers N``: :func:`launch_local` starts the scheduler and N workers
    as local processes of the same command, with these variables set, each
    worker pinned to its own share of the CPUs;
(c) one process per pod on Kubernetes, where the launcher sets the variables
    (or under ``msrun``, which sets them too).

Each worker writes a small JSON result (``$MINDZOO_RESULT_FILE``): the weight
digest, and on rank 0 the step's outputs, which the launching process turns
into its own KFP outputs. A worker's failure stops the others; the launcher
reports the failing rank's own ``error:`` line.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mindzoo.errors import MindzooError

ENV_RESULT = "MINDZOO_RESULT_FILE"
ENV_LOCAL_RANK = "MINDZOO_LOCAL_RANK"
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ClusterEnv:
    role: str | None  # None (single process), "MS_SCHED" or "MS_WORKER"
    node_id: int
    worker_num: int

    @classmethod
    def from_env(cls) -> ClusterEnv:
        role = os.environ.get("MS_ROLE") or None
        return cls(role, int(os.environ.get("MS_NODE_ID", "0") or 0), int(os.environ.get("MS_WORKER_NUM", "1") or 1))


def in_cluster(engine: str = "mindspore") -> bool:
    """Whether a launcher started this process as one member of a job (MindSpore: ``MS_ROLE``; torch: torchrun's
    or the Kubernetes launcher's rank variables, see :mod:`mindzoo.engine.torch.cluster`)."""
    if engine == "torch":
        from mindzoo.engine.torch.cluster import TorchClusterEnv

        return TorchClusterEnv.from_env().launched
    return ClusterEnv.from_env().role is not None


def is_scheduler() -> bool:
    return ClusterEnv.from_env().role == "MS_SCHED"


def write_result(payload: dict[str, Any]) -> None:
    """Hand this worker's result to the launching process (no-op when not launched by it)."""
    target = os.environ.get(ENV_RESULT)
    if target:
        tmp = f"{target}.tmp"
        Path(tmp).write_text(json.dumps(payload, sort_keys=True))
        os.replace(tmp, target)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """Children get SIGKILL when the launcher dies, so a killed launcher leaves no orphans (Linux)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def core_sets(workers: int) -> list[set[int] | None]:
    """This machine's CPUs split into one contiguous share per worker (None: too few CPUs to split).

    Like the recipes' ``taskset`` launch scripts: workers that share cores slow each other down far more
    than the gradient all-reduce costs."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < workers:
        return [None] * workers
    share = len(cpus) // workers
    return [set(cpus[i * share:(i + 1) * share]) for i in range(workers)]


def _child_setup(cores: set[int] | None) -> Callable[[], None]:
    def setup() -> None:
        _die_with_parent()
        if cores:
            os.sched_setaffinity(0, cores)

    return setup


@dataclass
class RankProc:
    name: str
    popen: subprocess.Popen
    log: Path
    result: Path | None


def launch_local(argv: Sequence[str], workers: int, *, say: Callable[[str], None],
                 env: dict[str, str] | None = None, timeout: float | None = None) -> list[dict[str, Any]]:
    """Run ``python -m mindzoo.cli ARGV`` as 1 scheduler + ``workers`` workers on this machine.

    Returns every worker's result (rank order). Rank 0's output is echoed with a ``[rank0]`` prefix;
    all logs go to a temporary folder named in the progress line, kept when a rank fails or ends badly
    (for its logs) and removed after a clean success.
    """
    work = Path(tempfile.mkdtemp(prefix="mindzoo-workers-"))
    port = free_port()
    base = {**os.environ, **(env or {}), "MS_SCHED_HOST": "127.0.0.1", "MS_SCHED_PORT": str(port),
            "MS_WORKER_NUM": str(workers), "PYTHONUNBUFFERED": "1", **rank_tmpdir(work)}
    command = [sys.executable, "-m", "mindzoo.cli", *argv]
    say(f"starting 1 scheduler + {workers} workers on 127.0.0.1:{port} (logs in {work})")
    procs = [_spawn("scheduler", command, {**base, "MS_ROLE": "MS_SCHED"}, work / "scheduler.log", None)]
    cores = core_sets(workers)
    for rank in range(workers):
        result = work / f"rank{rank}.json"
        rank_env = {**base, "MS_ROLE": "MS_WORKER", "MS_NODE_ID": str(rank), ENV_LOCAL_RANK: str(rank),
                    ENV_RESULT: str(result)}
        procs.append(_spawn(f"rank{rank}", command, rank_env, work / f"rank{rank}.log", result, echo=rank == 0,
                            cores=cores[rank]))
    try:
        clean = wait_ranks(procs[1:], work, timeout, say)
    finally:
        _stop(procs)
        shutil.rmtree(work / RANK_TMP, ignore_errors=True)  # every rank has ended: nothing writes there now
    results = [json.loads(p.result.read_text()) if p.result and p.result.is_file() else {} for p in procs[1:]]
    if clean:  # else the warning named the logs
        shutil.rmtree(work, ignore_errors=True)
    return results


#: The ranks' own temporary folder inside the launch's: a rank killed outright (SIGKILL, the OOM killer) cannot
#: remove what it made under $TMPDIR, and the launcher, which outlives it, removes this folder instead.
RANK_TMP = "tmp"


def rank_tmpdir(work: Path) -> dict[str, str]:
    """``TMPDIR`` for the ranks of a launch whose folder is ``work`` (created here)."""
    (work / RANK_TMP).mkdir(exist_ok=True)
    return {"TMPDIR": str(work / RANK_TMP)}


def _spawn(name: str, command: list[str], env: dict[str, str], log: Path, result: Path | None,
           echo: bool = False, cores: set[int] | None = None) -> RankProc:
    setup = _child_setup(cores)
    if not echo:
        with open(log, "wb") as fh:
            popen = subprocess.Popen(command, env=env, stdout=fh, stderr=subprocess.STDOUT, preexec_fn=setup)
        return RankProc(name, popen, log, result)
    popen = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=setup)
    threading.Thread(target=_tee, args=(popen, log, name), daemon=True).start()
    return RankProc(name, popen, log, result)


def _tee(popen: subprocess.Popen, log: Path, name: str) -> None:
    """Copy a worker's output to its log and (except its error line, which the launcher reports) to stderr."""
    with open(log, "wb") as fh:
        for line in iter(popen.stdout.readline, b""):
            fh.write(line)
            fh.flush()
            text = line.decode(errors="replace")
            if not text.startswith(("error:", "[INFO]", "[WARNING]")):  # framework chatter stays in the log
                sys.stderr.write(f"[{name}] {text}")
                sys.stderr.flush()


#: How long ranks that have written their results may take to end by themselves before they are stopped.
TEARDOWN_GRACE_S = 30.0


def _finished(proc: RankProc) -> bool:
    """The rank wrote its result: the last thing the step does once its work is published."""
    return proc.result is not None and proc.result.is_file()


def wait_ranks(workers: list[RankProc], logs: Path | None, timeout: float | None = None,
               say: Callable[[str], None] = lambda line: None) -> bool:
    """Until every worker has ended (or, once all wrote their results, TEARDOWN_GRACE_S more). A rank that fails
    before its result fails the launch at once. One that ends badly after it (MindSpore's distributed runtime
    crashed in its teardown once here, under load, after rank 0 had published the model) is a warning: its
    work is done, and a finished training must not be thrown away for it. Returns whether every rank ended well.
    ``logs``: the folder messages name (None where it dies with the caller, as in a pod)."""
    where = f" (logs in {logs})" if logs else ""
    deadline = None if timeout is None else time.monotonic() + timeout
    all_done_at = None
    # poll() every worker on every round: any() would stop at the first live one (usually rank 0), and a
    # crashed rank behind it would go unseen until rank 0 ended or hung in a collective.
    while [p.popen.poll() for p in workers].count(None):
        failed = [p for p in workers if p.popen.returncode not in (None, 0) and not _finished(p)]
        if failed:
            raise _failure(failed, workers, where)
        if all(_finished(p) for p in workers):
            all_done_at = all_done_at or time.monotonic()
            if time.monotonic() - all_done_at > TEARDOWN_GRACE_S:
                break  # _stop ends what is left
        elif deadline is not None and time.monotonic() > deadline:
            raise MindzooError(f"workers did not finish within {timeout:.0f}s{where}")
        time.sleep(0.2)
    failed = [p for p in workers if p.popen.returncode != 0 and not _finished(p)]
    if failed:
        raise _failure(failed, workers, where)
    for p in workers:
        if p.popen.returncode != 0:
            how = exit_status(p.popen.returncode) if p.popen.returncode is not None else "had not ended"
            say(f"warning: {p.name} {how} after writing its results, in the framework's teardown; they stand{where}")
    return all(p.popen.returncode == 0 for p in workers)


def _failure(failed: list[RankProc], workers: list[RankProc], where: str) -> MindzooError:
    time.sleep(1.0)  # let rank 0 finish writing its own error line if it is failing too
    ranked = sorted(failed + [p for p in workers if p.popen.poll() not in (None, 0) and p not in failed],
                    key=lambda p: int(p.name.removeprefix("rank")))  # rank2 before rank10
    first = ranked[0]
    message = rank_error_line(first.log, first.popen.returncode)
    return MindzooError(f"{first.name}: {message}{where}")


def exit_status(code: int | None) -> str:
    """``exited with code 3`` / ``killed by SIGSEGV``: how a process ended, as Popen reports it."""
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def rank_error_line(log: Path, code: int | None) -> str:
    """The rank's own ``error:`` line; else how it ended and its last line (framework chatter, a traceback)."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    errors = [line[len("error:"):].strip() for line in lines if line.startswith("error:")]
    if errors:
        return errors[-1]
    tail = [line for line in lines if line.strip()]
    return f"crashed ({exit_status(code)}); last line: {tail[-1][:300]}" if tail else exit_status(code)


def _stop(procs: list[RankProc], grace: float = 3.0) -> None:
    """After the workers are done, give the scheduler ``grace`` seconds to end by itself; then (or at once,
    when a worker is still running after a failure) terminate whatever is left."""
    deadline = time.monotonic() + grace
    while (procs[0].popen.poll() is None and time.monotonic() < deadline
           and all(p.popen.poll() is not None for p in procs[1:])):
        time.sleep(0.2)
    for p in procs:
        if p.popen.poll() is None:
            p.popen.terminate()
    for p in procs:
        try:
            p.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.popen.kill()
            p.popen.wait()
