"""mindzoo.tracking against the real MLflow server (artifacts proxied to the real MinIO)."""

from __future__ import annotations

import json
import socket

import click
import pytest
from click.testing import CliRunner

from mindzoo.steps.context import step_command
from mindzoo.tracking import MlflowTracker, NullTracker, create_tracker

pytestmark = [pytest.mark.control, pytest.mark.stack]


def test_run_with_params_metrics_and_artifact_reads_back(stack, tmp_path):
    from minio import Minio
    from mlflow.tracking import MlflowClient

    artifact = tmp_path / "report.json"
    artifact.write_text(json.dumps({"ok": True}))
    tracker = create_tracker(stack.mlflow_uri, "mindzoo-test-tracking", "run-a", tags={"pipeline_run_id": "p1"})
    tracker.log_params({"model": "googlenet", "optim.lr": 0.1})
    for step in range(5):
        tracker.log_metrics({"train/loss": 1.0 / (step + 1)}, step=step)
    tracker.log_artifact(artifact, "reports")
    report = tracker.finish()
    assert report.ok, report.message

    client = MlflowClient(stack.mlflow_uri)
    run = client.get_run(tracker.run_id)
    assert run.data.params == {"model": "googlenet", "optim.lr": "0.1"}
    assert run.data.tags["pipeline_run_id"] == "p1"
    assert run.info.status == "FINISHED"
    history = client.get_metric_history(tracker.run_id, "train/loss")
    assert [m.step for m in history] == [0, 1, 2, 3, 4]
    assert history[-1].value == pytest.approx(0.2)
    assert [a.path for a in client.list_artifacts(tracker.run_id, "reports")] == ["reports/report.json"]
    # Proxied artifacts land in the stack's MinIO bucket.
    objects = Minio(stack.s3_endpoint, stack.access_key, stack.secret_key, secure=False).list_objects(
        "mlflow", recursive=True)
    assert any(o.object_name.endswith(f"{tracker.run_id}/artifacts/reports/report.json") for o in objects)


def test_without_a_uri_tracking_is_off():
    assert isinstance(create_tracker(None, "e", "r"), NullTracker)


def _stopped_mlflow_uri() -> str:
    with socket.socket() as sock:  # a port nobody listens on: a stopped server
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_stopped_mlflow_buffers_and_reports_instead_of_raising(tmp_path, capsys):
    tracker = MlflowTracker(_stopped_mlflow_uri(), "e", "r", spill_path=tmp_path / "pending.json")
    tracker.log_params({"a": 1})
    tracker.log_metrics({"m": 1.0}, step=1)
    report = tracker.finish()
    assert not report.ok
    assert "unreachable" in report.message and "not delivered" in report.message
    assert "warning: tracking: MLflow at" in capsys.readouterr().err  # warned once, at the first failure
    pending = json.loads((tmp_path / "pending.json").read_text())["pending"]
    assert [op[0] for op in pending] == ["start", "params", "metrics", "end"]


def test_a_step_finishes_when_mlflow_is_down(tmp_path):
    """A real step (step_command machinery) with MLflow stopped: exit 0, one clear warning."""

    def run(cfg, ctx):
        tracker = ctx.start_tracking("mindzoo-test", "down", params={"x": 1})
        tracker.log_metrics({"m": 1.0}, step=0)
        (tmp_path / "result.txt").write_text("work done")

    from mindzoo.config import DigitsConfig

    command = step_command("demo", DigitsConfig, run, help="demo step")
    result = CliRunner().invoke(command, ["--tracking-uri", _stopped_mlflow_uri()], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "result.txt").read_text() == "work done"
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: tracking:")]
    assert len(warnings) == 2  # one when it failed, one summary at the end
    assert "not delivered" in warnings[-1]
    assert isinstance(command, click.Command)


@pytest.mark.parametrize("mlflow", ["up", "down"])
def test_a_steps_scratch_folder_goes_once_its_files_are_tracked_and_stays_when_they_are_not(stack, mlflow):
    """Evaluate's report files live in one (`ctx.scratch`): removed after delivery; a spilled run still names them."""
    made = []

    def run(cfg, ctx):
        folder = ctx.scratch("mindzoo-test-scratch-")
        (folder / "report.html").write_text("<p>report</p>")
        made.append(folder)
        ctx.start_tracking("mindzoo-test-scratch", mlflow).log_artifact(folder / "report.html", "evaluation")

    from mindzoo.config import DigitsConfig

    uri = stack.mlflow_uri if mlflow == "up" else _stopped_mlflow_uri()
    result = CliRunner().invoke(step_command("demo", DigitsConfig, run, help="demo step"), ["--tracking-uri", uri],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert made[0].exists() == (mlflow == "down"), result.output
    if mlflow == "up":  # removed because MLflow holds the file, not because nothing was tracked
        from mlflow.tracking import MlflowClient

        client = MlflowClient(stack.mlflow_uri)
        (run,) = client.search_runs([client.get_experiment_by_name("mindzoo-test-scratch").experiment_id])
        assert [a.path for a in client.list_artifacts(run.info.run_id, "evaluation")] == ["evaluation/report.html"]
    else:
        import shutil

        shutil.rmtree(made[0])


def _spilled(tmp_path, uri: str) -> tuple[MlflowTracker, "Path"]:  # noqa: F821
    """A run tracked while MLflow was down, saved to a spill file at the end (as a step does)."""
    artifact = tmp_path / "history.json"
    artifact.write_text("[]")
    tracker = MlflowTracker(uri, "mindzoo-test-replay", "spilled", tags={"mindzoo.step": "train"},
                            spill_path=tmp_path / "spill.json")
    tracker.log_params({"model": "googlenet"})
    tracker.log_metric_rows([({"train/loss": 1.0 / step}, step, 1000 * step) for step in (1, 2, 3)])
    tracker.log_metrics({"eval/top1": 0.5}, step=3)
    tracker.log_artifact(artifact, "curves")
    tracker.log_artifact(tmp_path / "gone.png", "curves")  # a file its machine took with it
    assert not tracker.finish().ok
    return tracker, tmp_path / "spill.json"


def test_a_spill_file_replays_into_mlflow_once_it_is_back_and_is_removed(stack, tmp_path):
    from mlflow.tracking import MlflowClient

    _, spill = _spilled(tmp_path, _stopped_mlflow_uri())
    down = stack.cli("runs", "replay", str(spill), "--tracking-uri", _stopped_mlflow_uri(), check=False)
    assert down.returncode != 0 and down.stderr.splitlines()[-1].startswith("error: MLflow at ")
    assert "gone.png is gone; not delivered" in down.stderr  # said once, and dropped from the file
    assert "6 of 6 calls still pending in" in down.stderr and spill.is_file()  # nothing lost, nothing doubled

    done = stack.cli("runs", "replay", str(spill), "--tracking-uri", stack.mlflow_uri)
    assert "warning" not in done.stderr
    said = done.stdout.strip().splitlines()[-1]  # (after MLflow's own "View run" lines)
    run_id = said.split(" to run ")[1].split()[0]
    assert said.startswith("delivered 6 tracking calls") and not spill.exists()
    client = MlflowClient(stack.mlflow_uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["mindzoo.step"] == "train"
    assert run.data.params == {"model": "googlenet"}
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "train/loss")] == [
        (1, 1.0), (2, 0.5), (3, pytest.approx(1 / 3))]
    assert run.data.metrics["eval/top1"] == 0.5
    assert [a.path for a in client.list_artifacts(run_id, "curves")] == ["curves/history.json"]


def test_a_resumed_runs_spill_replays_into_the_run_it_reopens(stack, tmp_path):
    """A resumed training (same run id) that could not even reopen its MLflow run: the replay reopens that
    run and adds to it; no second run appears."""
    from mlflow.tracking import MlflowClient

    from mindzoo.engine.runlog import RunTracker
    from mindzoo.tracking import replay_spill

    first = create_tracker(stack.mlflow_uri, "mindzoo-test-replay-resumed", "resumed")
    first.log_metrics({"train/loss": 1.0}, step=1)
    assert first.finish("FAILED").ok  # the first attempt, ended by its pod's eviction
    resumed = RunTracker(_stopped_mlflow_uri(), "mindzoo-test-replay-resumed", "resumed", reopen=first.run_id,
                         spill_path=tmp_path / "spill.json")
    resumed.log_metric_rows([({"train/loss": 0.5}, 2, 2000)])
    assert not resumed.finish().ok
    assert json.loads((tmp_path / "spill.json").read_text())["run_id"] == first.run_id

    assert replay_spill(tmp_path / "spill.json", stack.mlflow_uri, say=print).endswith(
        f"to run {first.run_id} at {stack.mlflow_uri}; removed {tmp_path / 'spill.json'}")
    client = MlflowClient(stack.mlflow_uri)
    experiment = client.get_experiment_by_name("mindzoo-test-replay-resumed").experiment_id
    assert [r.info.run_id for r in client.search_runs([experiment])] == [first.run_id]
    assert client.get_run(first.run_id).info.status == "FINISHED"
    history = client.get_metric_history(first.run_id, "train/loss")
    assert sorted((m.step, m.value) for m in history) == [(1, 1.0), (2, 0.5)]


@pytest.mark.parametrize("content, expected", [
    (None, "no tracking spill file at "),
    ("{not json", "is not a mindzoo tracking spill file (JSONDecodeError"),
    ('{"uri": "http://x"}', "is not a mindzoo tracking spill file (KeyError"),
    ('{"format": "other/2", "pending": []}', "is not a mindzoo tracking spill file (ValueError: format 'other/2')"),
    ("[1, 2]", "is not a mindzoo tracking spill file (AttributeError"),
], ids=["missing", "not json", "no calls", "other format", "not an object"])
def test_a_bad_spill_file_is_one_error_line(stack, tmp_path, content, expected):
    spill = tmp_path / "spill.json"
    if content is not None:
        spill.write_text(content)
    proc = stack.cli("runs", "replay", str(spill), check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and expected in proc.stderr, proc.stderr
    assert content is None or spill.read_text() == content  # left as it was
