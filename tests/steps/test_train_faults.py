"""`mindzoo train` under faults: the real MinIO and MLflow of the test stack stopped and started mid-training,
damaged checkpoints, a second writer of one run. The real CLI throughout; runs are tiny (16-px digits).

The stack is shared by the whole session: every test that stops a server starts it again (``stack up``
restarts only what is down and waits until it is healthy) before it ends, whatever happened.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.runtime, pytest.mark.stack]

sys.path.insert(0, str(Path(__file__).resolve().parent))  # test_train's dataset and run helpers

from test_train import TINY, _start, digits_dataset, one_error_line, outputs, train  # noqa: E402

PREFIX = "train_googlenet_cifar10"


@pytest.fixture(scope="module")
def dataset(stack):
    return digits_dataset(stack)


@pytest.fixture
def background(stack, dataset):
    """``start(*args, env=...)``: a background `mindzoo train` read by :class:`_Lines`, killed if the test
    fails while it still runs (so it neither outlives the test nor writes into later ones)."""
    started: list[_Lines] = []

    def start(*args, env=None) -> _Lines:
        started.append(_Lines(_start(stack, dataset, *args, env=env)))
        return started[-1]

    yield start
    for run in started:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait(timeout=30)


def _stop_service(stack, name: str) -> None:
    from mindzoo.stack import process

    process.stop(json.loads((stack.state_dir / "services" / f"{name}.json").read_text())["pid"])


def _restart(stack) -> None:
    stack.cli(*stack.up_args(), timeout=180)


class _Lines:
    """A background process's stderr, read on a thread: wait for a line, then keep everything."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc, self.lines, self._new = proc, [], threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            with self._new:
                self.lines.append(line)
                self._new.notify_all()
        with self._new:
            self._new.notify_all()

    def wait_for(self, text: str, count: int = 1, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        with self._new:
            while sum(text in line for line in self.lines) < count and time.monotonic() < deadline:
                if self.proc.poll() is not None and not self._new.wait(2):
                    break  # ended, and the reader has nothing more
                self._new.wait(1)
        if sum(text in line for line in self.lines) < count:
            raise AssertionError(f"never saw {text!r} x{count}:\n{self.text}")

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def finish(self, timeout: float = 300) -> int:
        self.proc.wait(timeout=timeout)
        time.sleep(0.2)  # the reader thread takes the last lines
        return self.proc.returncode


def _checkpoints(dataset, run_id) -> set[str]:
    from mindzoo.storage import MANIFEST, S3Uri, Storage

    keys = Storage.connect().list(S3Uri(dataset["bucket"], f"runs/{run_id}/checkpoints"))
    return {k.split("/")[3] for k in keys if k.endswith("/" + MANIFEST)}


# -- 2: a storage outage longer than the retry budget ---------------------------------------------------------
def test_minio_down_past_the_retry_budget_warns_and_training_publishes_every_later_checkpoint(stack, dataset,
                                                                                             background):
    args = (*TINY, "--set", "epochs=1,checkpoint.keep=100", "--steps-per-epoch", "40", "--checkpoint-every-steps",
            "2", "--log-every", "1", "--no-tracking-enabled", "--storage-retry-seconds", "2", "--run-id", "outage")
    run = background(*args)
    try:
        run.wait_for("checkpoint s3://")
        _stop_service(stack, "minio")
        run.wait_for("warning: checkpoint", count=2)  # two intervals pass with MinIO down: > the 2 s budget
    finally:
        _restart(stack)
    assert run.finish() == 0, run.text
    failed = {line.split("warning: checkpoint ")[1].split(" ")[0] for line in run.lines
              if "warning: checkpoint " in line}
    assert len(failed) >= 2 and "cannot reach object store" in run.text and "model: s3://" in run.text
    last_failed = max(int(name.rsplit("_", 1)[1]) for name in failed)
    expected = {f"{PREFIX}-1_{step}" for step in range(2, 40, 2)}
    published = _checkpoints(dataset, "outage")
    assert published == expected - failed, run.text  # every checkpoint but the ones tried during the outage
    assert any(int(name.rsplit("_", 1)[1]) > last_failed for name in published)


# -- 3: resume skips damaged checkpoints ------------------------------------------------------------------------
def test_resume_skips_an_unreadable_and_an_incomplete_checkpoint_and_says_so(stack, dataset, tmp_path):
    from mindzoo.storage import S3Uri, Storage

    args = (*TINY, "--set", "epochs=3", "--steps-per-epoch", "4", "--checkpoint-every-steps", "3",
            "--no-tracking-enabled", "--run-id", "damaged")
    train(stack, dataset, *args, executor_output=tmp_path / "whole.json")
    store, bucket = Storage.connect(), dataset["bucket"]
    assert _checkpoints(dataset, "damaged") == {f"{PREFIX}-1_3", f"{PREFIX}-2_6", f"{PREFIX}-3_9"}
    for key in store.list(S3Uri(bucket, "runs/damaged/model")):  # as if killed after its last checkpoint
        store.delete(S3Uri(bucket, key))
    newest = S3Uri(bucket, f"runs/damaged/checkpoints/{PREFIX}-3_9/MANIFEST.json")
    store.put_bytes(b"{not json", newest)  # unreadable
    middle = store.read_manifest(S3Uri(bucket, f"runs/damaged/checkpoints/{PREFIX}-2_6"))
    store.delete(S3Uri(bucket, middle.files["optimizer.ckpt"]["key"]))  # incomplete
    resumed = train(stack, dataset, *args, executor_output=tmp_path / "cut.json")
    warning = next(line for line in resumed.stderr.splitlines() if line.startswith("warning: skipped"))
    assert f"{PREFIX}-3_9 (" in warning and f"{PREFIX}-2_6 (" in warning and "NoSuchKey" in warning, warning
    assert warning.endswith(f"resuming from the newest good one, s3://{bucket}/runs/damaged/checkpoints/{PREFIX}-1_3")
    assert "step 3/4 of it (3/12 in all)" in resumed.stderr
    whole, cut = (outputs(tmp_path / f"{n}.json")["metrics"]["metadata"] for n in ("whole", "cut"))
    assert cut["steps"] == whole["steps"] == 12
    # MindSpore on CPU recomputes resumed steps bit for bit (test_train's kill test): the same tolerances.
    assert cut["top1"] == pytest.approx(whole["top1"], abs=1e-9)
    assert cut["loss"] == pytest.approx(whole["loss"], rel=1e-6)
    assert cut["train_loss"] == pytest.approx(whole["train_loss"], rel=1e-6)


# -- 7: one writer per run ---------------------------------------------------------------------------------------
def test_a_second_training_of_a_running_run_id_is_refused_with_one_line(stack, dataset, background):
    from mindzoo.storage import S3Uri, Storage

    args = (*TINY, "--set", "epochs=1", "--steps-per-epoch", "60", "--log-every", "1", "--no-tracking-enabled",
            "--run-id", "twice")
    first = background(*args)
    try:
        first.wait_for("step 1/60")
        second = train(stack, dataset, *args, check=False, timeout=300)
        error = one_error_line(second)
        assert first.proc.poll() is None, "the first run should still be training"
    finally:
        code = first.finish()
    assert "error: run twice is being trained by pid " in error and "runs/twice/LEASE.json" in error, error
    assert "epochs x" not in second.stderr  # refused before its framework started: it wrote nothing
    assert code == 0 and "model: s3://" in first.text, first.text
    assert not Storage.connect().exists(S3Uri(dataset["bucket"], "runs/twice/LEASE.json"))  # released at the end


# -- 4: MLflow down mid-training ---------------------------------------------------------------------------------
def _mlflow_runs(stack, dataset, run_id):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(stack.mlflow_uri)
    experiment = client.get_experiment_by_name(f"mindzoo/googlenet/{dataset['hash'][:12]}")
    return client, client.search_runs([experiment.experiment_id], f"tags.`mindzoo.run_id` = '{run_id}'")


def test_mlflow_down_mid_training_buffers_and_flushes_once_it_is_back(stack, dataset, background):
    """The trainer is paused (SIGSTOP) only while MLflow restarts (``stack up``, ~15 s, longer than this
    tiny run's remaining seconds); before that it trains on with MLflow down, and after it with MLflow back.
    Two epochs remain after the restart: with fewer, a fast machine finished them before the tracker's next
    retry, and "back" came only with the final flush."""
    args = (*TINY, "--set", "epochs=3", "--steps-per-epoch", "40", "--log-every", "1", "--run-id", "mlflow-gap")
    run = background(*args, env={"MINDZOO_TRACKING_RETRY_S": "2"})
    try:
        run.wait_for("step 3/40")
        _stop_service(stack, "mlflow")
        run.wait_for("warning: tracking: MLflow at")
        run.wait_for("epoch 1/3 step 12/40")  # steps logged while MLflow is down
    finally:
        run.proc.send_signal(signal.SIGSTOP)
        _restart(stack)
        run.proc.send_signal(signal.SIGCONT)
    assert run.finish() == 0, run.text
    back = next(i for i, line in enumerate(run.lines) if "is back; " in line)  # delivered while training on:
    assert any("epoch 3/3, loss" in line for line in run.lines[back + 1:]), run.text  # not only at the end
    assert "tracking incomplete" not in run.text
    client, runs = _mlflow_runs(stack, dataset, "mlflow-gap")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(runs[0].info.run_id, "train/loss")]
    assert sorted(steps) == list(range(1, 121))  # nothing logged during the outage was lost
    assert [m.step for m in client.get_metric_history(runs[0].info.run_id, "train/epoch_loss")] == [1, 2, 3]
    assert [m.step for m in client.get_metric_history(runs[0].info.run_id, "eval/top1")] == [3]


def test_a_step_ended_while_mlflow_is_down_spills_its_tracking_to_a_file(stack, dataset, background, tmp_path):
    args = (*TINY, "--set", "epochs=1", "--steps-per-epoch", "60", "--log-every", "1", "--run-id", "mlflow-spill")
    _stop_service(stack, "mlflow")
    try:
        run = background(*args, env={"MINDZOO_TRACKING_SPILL_DIR": str(tmp_path)})
        run.wait_for("step 5/60")
        run.proc.send_signal(signal.SIGTERM)  # the pod is deleted
        code = run.finish(timeout=120)
    finally:
        _restart(stack)
    assert code == 128 + signal.SIGTERM, run.text
    assert f"saved to {tmp_path / 'mlflow-spill.json'}" in run.text
    pending = json.loads((tmp_path / "mlflow-spill.json").read_text())["pending"]
    assert pending[0] == ["start"]
    rows = [row for op in pending if op[0] == "metric_rows" for row in op[1]]
    assert [step for _, step, _ in rows][:5] == [1, 2, 3, 4, 5]
    assert pending[-1] == ["end", "FAILED"]
    # MLflow is back: `mindzoo runs replay` delivers the file, and MLflow holds the stopped run whole.
    replay = stack.cli("runs", "replay", str(tmp_path / "mlflow-spill.json"), env="runtime")
    assert replay.stdout.strip().splitlines()[-1].startswith(f"delivered {len(pending)} tracking calls")
    client, runs = _mlflow_runs(stack, dataset, "mlflow-spill")
    assert len(runs) == 1 and runs[0].info.status == "FAILED"
    steps = [m.step for m in client.get_metric_history(runs[0].info.run_id, "train/loss")]
    assert sorted(steps) == [step for _, step, _ in rows]
    assert not (tmp_path / "mlflow-spill.json").exists()
