"""What the KFP end-to-end tests (test_kfp_runs.py) read back after a run, each from where the product
keeps it: the run through KFP's API (``kfp.Client``), the steps' MLflow runs through the chart's MLflow
(REST, as a pod would, with the chart's login), objects in the chart's MinIO, and the lineage KFP's
driver and launcher recorded in ML Metadata's tables in MariaDB.
"""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTROL_BIN = ROOT / ".venv-control" / "bin" / "mindzoo"


def submit(backend, params: list[str], *extra: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    """``mindzoo pipeline submit --host <the backend> --param ... EXTRA`` (``--wait`` is the caller's)."""
    argv = [str(CONTROL_BIN), "pipeline", "submit", "--host", backend.endpoint, "--experiment", "mindzoo-e2e",
            "--timeout", str(int(timeout)), *extra]
    for param in params:
        argv += ["--param", param]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 300)


def run_id_of(proc: subprocess.CompletedProcess) -> str:
    """The run id ``mindzoo pipeline submit`` printed (its stdout's last line)."""
    return proc.stdout.strip().splitlines()[-1]


def client(backend):
    import kfp

    return kfp.Client(host=backend.endpoint)


def task_states(backend, run_id: str) -> dict[str, str]:
    """{step: state} of a run's container tasks as KFP's API reports them, by step (a task named ``train-3``
    in the compiled spec, one of four branches, is ``train``)."""
    import re

    from mindzoo.pipeline.submit import step_tasks

    run = client(backend).get_run(run_id)
    steps = step_tasks(run.pipeline_spec)
    return {re.sub(r"-\d+$", "", t.display_name): t.state for t in run.run_details.task_details or []
            if t.display_name in steps and t.state != "SKIPPED"}


def minio(release):
    from minio import Minio

    m = release["minio"]
    return Minio(m["endpoint"], m["access_key"], m["secret_key"], secure=False)


def keys(release, bucket: str, prefix: str) -> list[str]:
    return [o.object_name for o in minio(release).list_objects(bucket, prefix, recursive=True)]


def read(release, bucket: str, key: str) -> str:
    response = minio(release).get_object(bucket, key)
    try:
        return response.read().decode()
    finally:
        response.close()
        response.release_conn()


def mlflow(cluster, release, path: str, body: dict | None = None) -> dict:
    """Call the chart's MLflow REST API through its ClusterIP (with the chart's login when it has one)."""
    ns = release["namespace"]
    service = cluster.core().read_namespaced_service("mindzoo-mlflow", ns).spec
    headers = {"Content-Type": "application/json", "Host": "localhost"}
    secrets = {x.metadata.name: x.data for x in cluster.core().list_namespaced_secret(ns).items}
    if "mindzoo-mlflow-auth" in secrets:  # the chart's mlflow.auth (off by default)
        secret = secrets["mindzoo-mlflow-auth"]
        login = base64.b64encode(base64.b64decode(secret["username"]) + b":" + base64.b64decode(secret["password"]))
        headers["Authorization"] = f"Basic {login.decode()}"
    request = urllib.request.Request(f"http://{service.cluster_ip}:{service.ports[0].port}{path}",
                                     data=json.dumps(body).encode() if body is not None else None, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")


def mlflow_runs(cluster, release, pipeline_run_id: str) -> list[dict]:
    """Every MLflow run tagged with the KFP run id (the steps' runs and their pipeline parent)."""
    experiments = mlflow(cluster, release, "/api/2.0/mlflow/experiments/search", {"max_results": 1000})
    ids = [e["experiment_id"] for e in experiments.get("experiments", [])]
    found = mlflow(cluster, release, "/api/2.0/mlflow/runs/search", {
        "experiment_ids": ids, "filter": f"tags.pipeline_run_id = '{pipeline_run_id}'", "max_results": 100})
    return found.get("runs", [])


def tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def mlmd_artifacts(backend, run_id: str) -> list[tuple[str, str, str]]:
    """(type, name, uri) of every artifact ML Metadata attributes to the KFP run's context, read from the
    store's own tables (MLMD's schema: Artifact, Type, Attribution, Context) in MariaDB."""
    config = backend._named("ConfigMap", "pipeline-install-config")["data"]
    rows = backend.db.sql(
        f"SELECT t.name, COALESCE(p.string_value, ''), a.uri FROM {config['mlmdDb']}.Artifact a "
        f"JOIN {config['mlmdDb']}.Type t ON t.id = a.type_id "
        f"JOIN {config['mlmdDb']}.Attribution at ON at.artifact_id = a.id "
        f"JOIN {config['mlmdDb']}.Context c ON c.id = at.context_id "
        f"LEFT JOIN {config['mlmdDb']}.ArtifactProperty p ON p.artifact_id = a.id AND p.name = 'display_name' "
        f"WHERE c.name = '{run_id}'")
    return [tuple(line.split("\t")) for line in rows.splitlines() if line.strip()]


def mlmd_metrics(backend, uri: str) -> dict[str, float]:
    """The numeric custom properties ML Metadata holds for the artifact at ``uri`` (what KFP's UI shows)."""
    config = backend._named("ConfigMap", "pipeline-install-config")["data"]
    rows = backend.db.sql(
        f"SELECT p.name, p.double_value FROM {config['mlmdDb']}.ArtifactProperty p "
        f"JOIN {config['mlmdDb']}.Artifact a ON a.id = p.artifact_id "
        f"WHERE a.uri = '{uri}' AND p.double_value IS NOT NULL")
    return {name: float(value) for name, value in (line.split("\t") for line in rows.splitlines() if line.strip())}


#: ML Metadata's Execution.State values (ml_metadata/proto/metadata_store.proto).
EXECUTION_STATES = {0: "UNKNOWN", 1: "NEW", 2: "RUNNING", 3: "COMPLETE", 4: "FAILED", 5: "CACHED", 6: "CANCELED"}


def mlmd_task_states(backend, run_id: str) -> dict[str, str]:
    """{task name: ML Metadata execution state} of the KFP run: what KFP's UI reads to mark a task as cached
    (KFP 2.17's run API reports a cache hit as SUCCEEDED, like a task that ran)."""
    db = backend._named("ConfigMap", "pipeline-install-config")["data"]["mlmdDb"]
    rows = backend.db.sql(
        f"SELECT p.string_value, e.last_known_state FROM {db}.Execution e "
        f"JOIN {db}.Association a ON a.execution_id = e.id JOIN {db}.Context c ON c.id = a.context_id "
        f"JOIN {db}.ExecutionProperty p ON p.execution_id = e.id AND p.name = 'task_name' "
        f"WHERE c.name = '{run_id}'")
    pairs = (line.split("\t") for line in rows.splitlines() if line.strip())
    return {name: EXECUTION_STATES[int(state)] for name, state in pairs if name}
