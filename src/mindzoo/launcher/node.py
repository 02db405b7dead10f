"""One node of a distributed launch: what ``mindzoo launch node`` runs inside each worker pod.

The launcher's Indexed Job (or TrainJob and its runtime) gives every pod its node rank, the
node count and pod 0's stable name (``MINDZOO_*``, see :mod:`.spec`; ``PET_*`` under Trainer's
torch runtime). This turns them into MindSpore's dynamic cluster: pod 0 also runs the
scheduler (``MS_ROLE=MS_SCHED``), and each pod runs
``workers`` worker processes of the same ``mindzoo train`` command with global
ranks ``node_rank * workers + i`` (``MS_NODE_ID``) out of ``nodes * workers``. It is the
multi-node counterpart of ``mindzoo.engine.distributed.launch_local``, which does the
same for one machine. Rank 0's result (its KFP outputs: checkpoint URI and metadata)
is published to ``--result`` for the launcher, which runs in another pod.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mindzoo.engine.distributed import RankProc, rank_tmpdir, wait_ranks
from mindzoo.errors import MindzooError
from mindzoo.launcher.spec import ENV_MASTER_ADDR, ENV_MASTER_PORT, ENV_NODE_RANK, ENV_NUM_NODES

#: What Kubeflow Trainer's torch runtime gives each pod, in NodeEnv's order (rank, nodes, master, port).
TORCHRUN_ENV = ("PET_NODE_RANK", "PET_NNODES", "PET_MASTER_ADDR", "PET_MASTER_PORT")


@dataclass(frozen=True)
class NodeEnv:
    rank: int
    nodes: int
    master: str
    port: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NodeEnv:
        """The launcher's ``MINDZOO_*`` variables; where the rank is absent, torchrun's ``PET_*`` ones, which
        Kubeflow Trainer's torch runtime injects instead (and forbids the launcher to set). One process per
        pod either way: the torch engine runs one, and ``PET_NPROC_PER_NODE`` is not read."""
        env = os.environ if env is None else env
        names = (ENV_NODE_RANK, ENV_NUM_NODES, ENV_MASTER_ADDR, ENV_MASTER_PORT)
        if ENV_NODE_RANK not in env and "PET_NODE_RANK" in env:
            names = TORCHRUN_ENV
        try:
            return cls(int(env[names[0]]), int(env[names[1]]), env[names[2]], int(env[names[3]]))
        except (KeyError, ValueError) as err:
            raise MindzooError(f"`mindzoo launch node` runs in a launcher's worker pod: {err} is not set "
                               f"({', '.join(names)})") from None


def resolve(host: str, timeout: float = 600.0) -> str:
    """Pod 0's IP: MindSpore wants an address, and pod 0's DNS name appears only once it has one."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.gethostbyname(host)
        except OSError as err:
            if time.monotonic() > deadline:
                raise MindzooError(f"cannot resolve the scheduler host {host} after {timeout:.0f}s: {err}") from None
            time.sleep(2.0)


def run(argv: Sequence[str], workers: int, say: Callable[[str], None] = print,
        publish: Callable[[dict], None] | None = None,
        publish_rank: Callable[[int, dict], None] | None = None) -> dict:
    """Run this node's share of the cluster; return rank 0's result on node 0 (else {}). Every rank's
    weight digest goes to ``publish_rank`` (the launcher checks that all ranks agree)."""
    node = NodeEnv.from_env()
    # The ranks' result files and side logs live only as long as this call: a pod's disk is gone with
    # it anyway, but a node run on a workstation or in a test must not leave them in /tmp.
    with tempfile.TemporaryDirectory(prefix="mindzoo-node-") as tmp:
        if _engine(argv) == "torch":  # the torch engine reads the MINDZOO_* variables itself, one process per pod
            return _torch_node(argv, node, Path(tmp), say, publish, publish_rank)
        return _mindspore_node(argv, node, workers, Path(tmp), say, publish, publish_rank)


def _mindspore_node(argv: Sequence[str], node: NodeEnv, workers: int, work: Path, say: Callable[[str], None],
                    publish: Callable[[dict], None] | None,
                    publish_rank: Callable[[int, dict], None] | None) -> dict:
    """This pod's MindSpore processes: the scheduler (node 0 only) and ``workers`` workers."""
    from mindzoo.engine.distributed import ENV_LOCAL_RANK, ENV_RESULT
    from mindzoo.engine.training import ENV_LOCAL_WORKERS

    host = resolve(node.master)
    base = {**os.environ, "MS_SCHED_HOST": host, "MS_SCHED_PORT": str(node.port),
            "MS_WORKER_NUM": str(node.nodes * workers), ENV_LOCAL_WORKERS: str(workers), "PYTHONUNBUFFERED": "1",
            **rank_tmpdir(work)}
    command = [sys.executable, "-m", "mindzoo.cli", *argv]
    say(f"node {node.rank}/{node.nodes}: {workers} worker(s), scheduler {node.master} ({host}:{node.port})")
    scheduler = (_start(command, {**base, "MS_ROLE": "MS_SCHED"}, work / "scheduler.log")
                 if node.rank == 0 else None)
    procs = []
    for local in range(workers):
        rank = node.rank * workers + local
        env = {**base, "MS_ROLE": "MS_WORKER", "MS_NODE_ID": str(rank), ENV_LOCAL_RANK: str(local),
               ENV_RESULT: str(work / f"rank{rank}.json")}
        # The first worker of a pod speaks on the pod's log (the launcher follows pod 0's); others log to files.
        procs.append(_rank(rank, work, _start(command, env, None if local == 0 else work / f"rank{rank}.log")))
    try:
        wait_ranks(procs, None, say=say)  # the folder goes with this call: messages name no logs
    finally:
        for proc in [p.popen for p in procs] + ([scheduler] if scheduler else []):
            _end(proc)
    _publish_ranks(work, [int(p.name.removeprefix("rank")) for p in procs], publish_rank)
    return _rank0_result(node, work, publish)


def _rank(rank: int, work: Path, popen: subprocess.Popen) -> RankProc:
    """A rank for :func:`wait_ranks`: named as messages say it, with the log and result files it writes (a
    pod's first rank logs to the pod's own log, so its log file never exists)."""
    return RankProc(f"rank {rank}", popen, work / f"rank{rank}.log", work / f"rank{rank}.json")


def _publish_ranks(work: Path, ranks: Sequence[int], publish_rank: Callable[[int, dict], None] | None) -> None:
    """Each rank's digest of its final weights, as the rank itself computed it."""
    for rank in ranks if publish_rank else ():
        path = work / f"rank{rank}.json"
        result = json.loads(path.read_text()) if path.is_file() else {}
        publish_rank(rank, {k: result.get(k) for k in ("rank", "weights_sha256", "steps")})


def _rank0_result(node: NodeEnv, work: Path, publish: Callable[[dict], None] | None) -> dict:
    """On node 0, rank 0's result (its KFP outputs), published for the launcher; {} elsewhere."""
    if node.rank != 0:
        return {}
    result = json.loads((work / "rank0.json").read_text()) if (work / "rank0.json").is_file() else {}
    if not result:
        raise MindzooError("rank 0 finished without a result")
    if publish:
        publish(result)
    return result


def _engine(argv: Sequence[str]) -> str:
    argv = list(argv)
    return argv[argv.index("--engine") + 1] if "--engine" in argv[:-1] else "mindspore"


def _torch_node(argv: Sequence[str], node: NodeEnv, work: Path, say: Callable[[str], None],
                publish: Callable[[dict], None] | None, publish_rank: Callable[[int, dict], None] | None) -> dict:
    """One `mindzoo train --engine torch` process (engine/torch/cluster.py: rank = node rank)."""
    from mindzoo.engine.torch.launch import ENV_RESULT_DIR

    say(f"node {node.rank}/{node.nodes}: 1 torch process, master {node.master}:{node.port}")
    proc = _start([sys.executable, "-m", "mindzoo.cli", *argv], {**os.environ, ENV_RESULT_DIR: str(work),
                                                                 **rank_tmpdir(work)}, None)
    try:
        wait_ranks([_rank(node.rank, work, proc)], None, say=say)
    finally:
        _end(proc)
    _publish_ranks(work, [node.rank], publish_rank)
    return _rank0_result(node, work, publish)


def _start(command: list[str], env: dict[str, str], log: Path | None) -> subprocess.Popen:
    if log is None:
        return subprocess.Popen(command, env=env)
    with open(log, "wb") as fh:
        return subprocess.Popen(command, env=env, stdout=fh, stderr=subprocess.STDOUT)


def _end(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """The scheduler ends by itself once the workers are done; give it ``grace`` seconds, then stop it."""
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
