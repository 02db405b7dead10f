"""`mindzoo launch node`, what each worker pod of a distributed launch runs, for real: two "nodes" as two
processes on this machine, given the variables the launcher's Indexed Job gives its pods, form one
MindSpore dynamic cluster (node 0 also hosts the scheduler), train, and node 0 publishes rank 0's result
to MinIO for the launcher. The Job itself is tested against a real API server in tests/cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mindzoo.datasets import DIGITS_TRAINING

pytestmark = [pytest.mark.runtime, pytest.mark.stack, pytest.mark.slow]

BIN = Path(sys.executable).parent / "mindzoo"
# GoogLeNet's CIFAR-10 recipe at 16 px for a few steps (how the digits train; the steps set their own epochs).
TINY = list(DIGITS_TRAINING.argv(epochs=False))


def digits_dataset(stack, bucket: str, tmp_path: Path) -> str:
    """The bundled digits, converted by the real preprocess step into ``bucket``; its s3:// prefix."""
    from mindzoo.storage import MANIFEST, S3Uri, Storage

    stack.cli("datasets", "make-digits", "--format", "cifar10", str(tmp_path / "digits"), env="runtime")
    stack.cli("preprocess", "--source", str(tmp_path / "digits"), "--output", f"s3://{bucket}/datasets",
              "--no-tracking-enabled", env="runtime")
    keys = Storage.connect().list(S3Uri(bucket, "datasets"))
    return f"s3://{bucket}/" + next(k.rsplit("/", 1)[0] for k in keys if k.endswith(MANIFEST))


def node(rank: int, nodes: int, port: int, argv: list[str], result: str = "",
         tmp: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, "MINDZOO_NODE_RANK": str(rank), "MINDZOO_NUM_NODES": str(nodes),
           "MINDZOO_MASTER_ADDR": "localhost", "MINDZOO_MASTER_PORT": str(port), "GLOG_v": "3",
           **({"TMPDIR": str(tmp)} if tmp else {})}
    extra = ["--result", result] if result else []
    return subprocess.Popen([str(BIN), "launch", "node", "--workers", "1", *extra, "--", "train", *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_nodes_train_as_one_cluster_and_node_0_publishes_the_result(stack, bucket, tmp_path):
    from mindzoo.engine.distributed import free_port
    from mindzoo.storage import S3Uri, Storage

    dataset = digits_dataset(stack, bucket, tmp_path)
    output = f"s3://{bucket}/runs"
    argv = ["--dataset", dataset, "--output", output, "--run-id", "two-nodes", *TINY,
            "--set", "epochs=1", "--steps-per-epoch", "3", "--no-final-eval"]
    result = f"{output}/two-nodes/launch/result.json"
    port = free_port()
    scratch = [tmp_path / "tmp0", tmp_path / "tmp1"]  # each node's TMPDIR: what it leaves behind there
    for folder in scratch:
        folder.mkdir()
    procs = [node(r, 2, port, argv, result, scratch[r]) for r in (0, 1)]  # as the Job gives every pod
    outs = [p.communicate(timeout=900) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    assert "node 0/2: 1 worker(s)" in outs[0][1] and "node 1/2: 1 worker(s)" in outs[1][1]
    payload = json.loads(Storage.connect().get_bytes(S3Uri.parse(result)))
    checkpoint = payload["artifacts"]["checkpoint"]
    assert checkpoint["uri"] == f"{output}/two-nodes/model"
    assert checkpoint["metadata"]["model"] == "googlenet"
    assert payload["artifacts"]["metrics"]["metadata"]["steps"] == 3
    ranks = [json.loads(Storage.connect().get_bytes(S3Uri.parse(f"{output}/two-nodes/launch/ranks/rank{r}.json")))
             for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1] and [r["steps"] for r in ranks] == [3, 3]
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"] and len(ranks[0]["weights_sha256"]) == 64
    assert [sorted(p.name for p in folder.iterdir()) for folder in scratch] == [[], []]  # results/logs removed


def test_a_failing_worker_fails_its_node_with_the_workers_error(stack):
    from mindzoo.engine.distributed import free_port

    proc = node(0, 1, free_port(), ["--dataset", "s3://mindzoo/datasets/nothing-here", "--run-id", "bad", *TINY])
    _, err = proc.communicate(timeout=300)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode != 0 and lines[-1].startswith("error: rank 0: ")
    assert "Traceback" not in err


def test_outside_a_launch_the_node_command_says_what_is_missing():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINDZOO_")}
    proc = subprocess.run([str(BIN), "launch", "node", "--", "train", "--dataset", "x"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        "error: `mindzoo launch node` runs in a launcher's worker pod: 'MINDZOO_NODE_RANK' is not set "
        "(MINDZOO_NODE_RANK, MINDZOO_NUM_NODES, MINDZOO_MASTER_ADDR, MINDZOO_MASTER_PORT)"]
