"""One parent run per pipeline run, even when steps of that pipeline run start at the same moment (real MLflow)."""

from __future__ import annotations

import threading
import uuid

import pytest

from mindzoo.tracking import MlflowTracker, pipeline_parent

pytestmark = [pytest.mark.control, pytest.mark.stack]


def test_parallel_steps_agree_on_one_parent(stack):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(stack.mlflow_uri)
    experiment = client.create_experiment(f"mindzoo-test-parents-{uuid.uuid4().hex[:6]}")
    barrier, found = threading.Barrier(4), []

    def step() -> None:
        barrier.wait()  # all four ask before any has created a parent
        found.append(pipeline_parent(MlflowClient(stack.mlflow_uri), experiment, "kfp-race", {}))

    threads = [threading.Thread(target=step) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(found) == 4 and len(set(found)) == 1
    alive = client.search_runs([experiment], "tags.`mindzoo.kind` = 'pipeline'")
    assert [r.info.run_id for r in alive] == found[:1]  # the losers deleted their candidates
    assert alive[0].data.tags["pipeline_run_id"] == "kfp-race" and alive[0].info.run_name == "pipeline-kfp-race"


def test_the_parent_shows_the_outcome_of_its_latest_step(stack):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(stack.mlflow_uri)
    name = f"mindzoo-test-parent-status-{uuid.uuid4().hex[:6]}"
    failed = MlflowTracker(stack.mlflow_uri, name, "train", pipeline_run_id="kfp-status")
    assert failed.finish("FAILED").ok
    parent = client.get_run(failed.parent_run_id)
    assert parent.info.status == "FAILED"
    retried = MlflowTracker(stack.mlflow_uri, name, "train", pipeline_run_id="kfp-status")
    assert retried.parent_run_id == failed.parent_run_id  # found, not created again
    assert client.get_run(retried.parent_run_id).info.status == "RUNNING"
    assert retried.finish("FINISHED").ok
    assert client.get_run(retried.parent_run_id).info.status == "FINISHED"
    assert client.get_run(retried.run_id).data.tags["mlflow.parentRunId"] == parent.info.run_id


def test_without_a_pipeline_run_id_a_run_is_top_level(stack):
    from mlflow.tracking import MlflowClient

    tracker = MlflowTracker(stack.mlflow_uri, f"mindzoo-test-top-{uuid.uuid4().hex[:6]}", "alone")
    assert tracker.finish().ok
    run = MlflowClient(stack.mlflow_uri).get_run(tracker.run_id)
    assert "mlflow.parentRunId" not in run.data.tags and tracker.parent_run_id is None
