"""``--workers N --engine torch`` on one machine: torchrun starts N ranks of the same command.

The counterpart of :func:`mindzoo.engine.distributed.launch_local` (same
signature, same results): ``python -m torch.distributed.run --nproc-per-node N
-m mindzoo.cli train ...`` with rank 0 as the master on 127.0.0.1. Each rank
writes its result (weights digest, rank 0's step outputs) to
``$MINDZOO_RESULT_DIR/rank<r>.json``. Every rank's output goes to its own log
under a temporary folder (kept when a rank fails, removed after a success);
rank 0's is echoed with a ``[rank0]`` prefix, and a
failure is reported as the failing rank's own ``error:`` line, not torchrun's
traceback. This module imports no torch (the launching process needs none).
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mindzoo.engine.distributed import core_sets, free_port
from mindzoo.errors import MindzooError

__all__ = ["launch_local"]

ENV_RESULT_DIR = "MINDZOO_RESULT_DIR"  # read by mindzoo.engine.torch.runtime.join
_RANK0 = "[default0]:"  # torchrun's prefix for local rank 0's teed lines


def launch_local(argv: Sequence[str], workers: int, *, say: Callable[[str], None],
                 env: dict[str, str] | None = None, timeout: float | None = None) -> list[dict[str, Any]]:
    """Run ``mindzoo ARGV`` as ``workers`` torchrun ranks on this machine; every rank's result, in rank order."""
    work = Path(tempfile.mkdtemp(prefix="mindzoo-torchrun-"))
    port = free_port()
    share = len(core_sets(workers)[0] or ()) or 1
    child_env = {**os.environ, **(env or {}), ENV_RESULT_DIR: str(work), "PYTHONUNBUFFERED": "1",
                 "OMP_NUM_THREADS": str(share)}  # set, so torchrun does not force 1 and print a banner
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(workers),
               "--master-addr", "127.0.0.1", "--master-port", str(port), "--max-restarts", "0",
               "--log-dir", str(work / "logs"), "--tee", "3", "--local-ranks-filter", "0",
               "-m", "mindzoo.cli", *argv]
    say(f"starting {workers} torchrun workers on 127.0.0.1:{port} (logs in {work})")
    log = work / "torchrun.log"
    popen = subprocess.Popen(command, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             preexec_fn=_die_with_parent)
    tee = threading.Thread(target=_tee, args=(popen, log), daemon=True)
    tee.start()
    try:
        code = _wait(popen, timeout, work)
    finally:
        _stop(popen)
        tee.join(timeout=5)
    if code != 0:
        raise _failure(work, code)
    results = [_result(work / f"rank{rank}.json") for rank in range(workers)]
    shutil.rmtree(work, ignore_errors=True)
    return results


def _die_with_parent() -> None:
    """torchrun gets SIGTERM when the launching process dies (it then stops its workers); Linux only."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _tee(popen: subprocess.Popen, log: Path) -> None:
    """Keep torchrun's whole output in its log; echo rank 0's lines, minus its error line (reported by us)."""
    with open(log, "wb") as fh:
        for line in iter(popen.stdout.readline, b""):
            fh.write(line)
            fh.flush()
            text = line.decode(errors="replace")
            if text.startswith(_RANK0):
                text = text[len(_RANK0):]
                if not text.startswith(("error:", "[INFO]", "[WARNING]")):  # framework chatter stays in the log
                    sys.stderr.write(f"[rank0] {text}")
                    sys.stderr.flush()


def _wait(popen: subprocess.Popen, timeout: float | None, work: Path) -> int:
    try:
        return popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise MindzooError(f"workers did not finish within {timeout:.0f}s (logs in {work})") from None


def _stop(popen: subprocess.Popen) -> None:
    if popen.poll() is None:
        popen.terminate()  # torchrun forwards it to the workers
        try:
            popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()


def _failure(work: Path, code: int) -> MindzooError:
    """The lowest failing rank's own ``error:`` line, else its traceback's last line, else torchrun's."""
    logs = [(rank, path.read_text(errors="replace").splitlines()) for rank, path in _rank_logs(work)]
    for rank, lines in logs:
        errors = [line[len("error:"):].strip() for line in lines if line.startswith("error:")]
        if errors:
            return MindzooError(f"rank{rank}: {errors[-1]} (logs in {work})")
    for rank, lines in logs:
        if any(line.startswith("Traceback") for line in lines):
            tail = [line for line in lines if line.strip()]
            return MindzooError(f"rank{rank}: crashed: {tail[-1][:300]} (logs in {work})")
    tail = [line for line in (work / "torchrun.log").read_text(errors="replace").splitlines() if line.strip()]
    return MindzooError(f"torchrun exited with code {code}: {tail[-1][:300] if tail else 'no output'} "
                        f"(logs in {work})")


def _rank_logs(work: Path) -> list[tuple[int, Path]]:
    """(local rank, stderr.log) of the last attempt, lowest rank first (``logs/<run>/attempt_<n>/<rank>/``)."""
    found = [(int(p.parent.name), p) for p in (work / "logs").glob("*/attempt_*/*/stderr.log")
             if p.parent.name.isdigit()]
    return sorted(found)


def _result(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}
