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
