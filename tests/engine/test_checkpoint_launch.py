"""Checkpoint store in the real MinIO, identity checks, run planning and the dynamic-cluster launcher's plumbing."""

from __future__ import annotations

import json
import os
import sys

import pytest

pytestmark = [pytest.mark.runtime, pytest.mark.stack]

from mindzoo.engine import checkpoint as ckpt  # noqa: E402
from mindzoo.engine import distributed  # noqa: E402
from mindzoo.engine.plan import apply_data_overrides, resolve_recipe, scaled_sizes  # noqa: E402
from mindzoo.errors import ConfigError, MindzooError  # noqa: E402
from mindzoo.storage import S3Uri, Storage  # noqa: E402


def _folder(tmp_path, name, step):
    folder = tmp_path / name
    folder.mkdir()
    (folder / ckpt.WEIGHTS).write_bytes(os.urandom(64))
    ckpt.write_folder(folder, {"model": "googlenet", "num_classes": 10}, {"step": step})
    return folder


def test_publish_latest_prune_and_fetch(stack, bucket, tmp_path):
    store = ckpt.CheckpointStore(Storage.connect(), S3Uri(bucket, "runs/r1"))
    assert store.latest() is None
    for step in (3, 6, 9, 12):
        meta = {"state": {"step": step}, "identity": {"model": "googlenet", "num_classes": 10}}
        store.publish(_folder(tmp_path, f"src{step}", step), f"p-1_{step}", meta, keep=2)
    assert [s for s, _, _ in store.published()] == [9, 12]  # the 2 newest are kept
    name, meta = store.latest()
    assert (name, meta["state"]["step"]) == ("p-1_12", 12)
    local = store.fetch(name, tmp_path / "back")
    assert ckpt.read_json(local / ckpt.STATE) == {"step": 12}
    assert ckpt.read_json(local / ckpt.IDENTITY)["format"] == ckpt.CHECKPOINT_FORMAT
    assert str(store.uri("best")) == f"s3://{bucket}/runs/r1/best"
    assert ckpt.local_checkpoint(str(store.uri(name)), Storage.connect(), tmp_path).joinpath(ckpt.WEIGHTS).is_file()


def test_identity_refuses_another_model(tmp_path):
    identity = {"model": "googlenet", "num_classes": 10}
    ckpt.check_identity(identity, model="googlenet", num_classes=10, where="x")
    with pytest.raises(ckpt.CheckpointMismatch, match="model 'googlenet', not 'resnet50'"):
        ckpt.check_identity(identity, model="resnet50", num_classes=10, where="x")
    with pytest.raises(ckpt.CheckpointMismatch, match="10 classes, not 1000"):
        ckpt.check_identity(identity, model=None, num_classes=1000, where="x")
    bare = tmp_path / "w.ckpt"
    bare.write_bytes(b"weights")
    local = ckpt.local_checkpoint(str(bare), None, tmp_path)
    assert (local / ckpt.WEIGHTS).read_bytes() == b"weights"
    with pytest.raises(MindzooError, match="no such checkpoint"):
        ckpt.local_checkpoint(str(tmp_path / "missing"), None, tmp_path)


def test_recipe_resolution_and_sizes():
    model, recipe, source = resolve_recipe("googlenet", "", {})
    assert (model, source, recipe.num_classes) == ("googlenet", "googlenet_cifar10", 10)
    assert resolve_recipe("", "googlenet_imagenet", {})[0] == "googlenet"
    with pytest.raises(ConfigError, match=r"^train\.model: unknown model 'nope'"):
        resolve_recipe("nope", "", {})
    with pytest.raises(ConfigError, match=r"^train\.recipe\.optim\.momentum: must be in \[0, 1\)"):
        resolve_recipe("zfnet", "", {"optim.momentum": "1.5"})
    mult = resolve_recipe("", "sppnet_mult", {})[1]
    from mindzoo.archs import get_data_config

    small = get_data_config("sppnet").at_size(128)
    assert scaled_sizes(mult, small, 128) == (128, 103) and small.extra_train_sizes == (103,)
    assert apply_data_overrides(small, {"train.hflip": "0"}).train.hflip == 0.0
    with pytest.raises(ConfigError, match=r"^train\.data\.train\.nope: unknown key"):
        apply_data_overrides(small, {"train.nope": "1"})


def test_flags_round_trip_through_the_cli():
    """The launcher re-creates the step's flags for its workers; they must rebuild the same config."""
    from mindzoo.config import TrainConfig
    from mindzoo.configkit import build
    from mindzoo.engine.training import to_argv
    from mindzoo.steps.train import command

    cfg = TrainConfig(dataset="s3://b/d", model="googlenet", set=("epochs=2", "schedule.fractions=0.5,0.7"),
                      workers=2, final_eval=False, input_size=16, threads=1)
    ctx = command.make_context("train", to_argv(TrainConfig, cfg))
    own = {k: v for k, v in ctx.params.items() if not k.startswith(("storage__", "tracking__", "executor"))}
    assert build(TrainConfig, own, "train") == cfg


def test_cluster_env_and_result_file(tmp_path, monkeypatch):
    monkeypatch.delenv("MS_ROLE", raising=False)
    assert not distributed.in_cluster()
    monkeypatch.setenv("MS_ROLE", "MS_WORKER")
    monkeypatch.setenv("MS_NODE_ID", "1")
    monkeypatch.setenv("MS_WORKER_NUM", "4")
    assert distributed.ClusterEnv.from_env() == distributed.ClusterEnv("MS_WORKER", 1, 4)
    assert distributed.in_cluster() and not distributed.is_scheduler()
    monkeypatch.setenv(distributed.ENV_RESULT, str(tmp_path / "r.json"))
    distributed.write_result({"rank": 1})
    assert json.loads((tmp_path / "r.json").read_text()) == {"rank": 1}


@pytest.mark.parametrize("lines, code, expected", [
    (["[train] epoch 1/1", "error: not a converted dataset: /x", "[INFO] chatter"], 2, "not a converted dataset: /x"),
    (["[train] done in 3.0s", "[INFO] DISTRIBUTED ... dispatch success!"], -11,
     "crashed (killed by SIGSEGV); last line: [INFO] DISTRIBUTED ... dispatch success!"),
    (["Traceback (most recent call last):", "RuntimeError: boom"], 1,
     "crashed (exited with code 1); last line: RuntimeError: boom"),
    ([], -9, "killed by SIGKILL"),
    (None, 3, "exited with code 3"),  # no log at all (rank 0 of a pod speaks on the pod's log)
])
def test_a_failed_ranks_line_is_its_error_else_how_it_ended(tmp_path, lines, code, expected):
    log = tmp_path / "rank0.log"
    if lines is not None:
        log.write_text("".join(f"{line}\n" for line in lines))
    assert distributed.rank_error_line(log, code) == expected


def test_launcher_reports_the_failing_ranks_error_line(stack, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the launch keeps its logs folder
    with pytest.raises(MindzooError) as err:
        distributed.launch_local(["train", "--dataset", "/nonexistent/dataset", "--model", "googlenet"], 2,
                                 say=lambda line: None, timeout=120)
    message = str(err.value)
    assert message.startswith("rank") and "not a converted dataset" in message and "\n" not in message
    (kept,) = tmp_path.glob("mindzoo-workers-*")  # a failed launch keeps its ranks' logs for the user
    assert {p.name for p in kept.iterdir()} >= {"scheduler.log", "rank0.log", "rank1.log"}
    # The ranks' TMPDIR was inside it, and went once they had ended (a rank that is stopped cannot clean up).
    assert not (kept / distributed.RANK_TMP).exists() and list(tmp_path.iterdir()) == [kept]


def test_a_rank_that_dies_while_rank_0_runs_fails_the_launch_at_once(tmp_path):
    """Real processes: rank 0 would run for a minute, rank 1 exits 3 at once; the wait notices rank 1."""
    import subprocess
    import time

    def spawn(name, code):
        log = tmp_path / f"{name}.log"
        log.write_text(f"error: {name} gave up\n" if name == "rank1" else "")
        return distributed.RankProc(name, subprocess.Popen([sys.executable, "-c", code]), log, None)

    procs = [spawn("scheduler", "import time; time.sleep(60)"), spawn("rank0", "import time; time.sleep(60)"),
             spawn("rank1", "raise SystemExit(3)")]
    started = time.monotonic()
    try:
        with pytest.raises(MindzooError, match=r"^rank1: rank1 gave up \(logs in "):
            distributed.wait_ranks(procs[1:], tmp_path, timeout=50)
        assert time.monotonic() - started < 20  # not after rank 0's minute, nor at the timeout
    finally:
        distributed._stop(procs)


def test_ranks_that_end_badly_after_writing_their_results_are_a_warning_not_a_failure(tmp_path, monkeypatch):
    """Real processes: every rank writes its result; then rank 0 exits 3 (as MindSpore's distributed runtime once
    crashed in its teardown) and rank 1 hangs. The launch keeps the results and says what happened."""
    import subprocess

    monkeypatch.setattr(distributed, "TEARDOWN_GRACE_S", 1.0)

    def spawn(name, then):
        result = tmp_path / f"{name}.json"
        code = f"import json, time; open({str(result)!r}, 'w').write(json.dumps({{'rank': {name[-1]!r}}})); {then}"
        return distributed.RankProc(name, subprocess.Popen([sys.executable, "-c", code]), tmp_path / f"{name}.log",
                                 result)

    scheduler = distributed.RankProc("scheduler", subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]),
                                  tmp_path / "scheduler.log", None)
    procs = [scheduler, spawn("rank0", "raise SystemExit(3)"), spawn("rank1", "time.sleep(60)")]
    said = []
    try:
        assert distributed.wait_ranks(procs[1:], tmp_path, timeout=50, say=said.append) is False
    finally:
        distributed._stop(procs)
    assert said == [f"warning: rank0 exited with code 3 after writing its results, in the framework's teardown; "
                    f"they stand (logs in {tmp_path})",
                    f"warning: rank1 had not ended after writing its results, in the framework's teardown; "
                    f"they stand (logs in {tmp_path})"]
    assert all(p.popen.poll() is not None for p in procs)  # stopped: nothing outlives the launch
