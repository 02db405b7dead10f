"""`mlflow.auth` against a real MLflow 3.17.2 server running the basic-auth app with the
configuration file the chart renders (its database_uri pointed at SQLite here instead of
PostgreSQL) and the admin credentials in the environment variables the Deployment sets:
without credentials the API answers 401; mindzoo's tracker, given MLflow's standard
MLFLOW_TRACKING_USERNAME/PASSWORD, logs a run whose params and metrics read back; the
`helm test` program passes as rendered. One server for the module (a few seconds)."""

from __future__ import annotations

import base64
import json
import re
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from chartkit import one

pytestmark = [pytest.mark.control, pytest.mark.stack]
ADMIN = "mindzoo"  # mlflow.auth.adminUsername's default


def rendered(chart) -> list[dict]:
    return chart.template({"mlflow": {"auth": {"enabled": True}}})


@pytest.fixture(scope="module")
def auth_mlflow(chart, stack, tmp_path_factory) -> Iterator[dict[str, str]]:
    from mindzoo.engine.distributed import free_port
    from mindzoo.stack import mlflow_server, process

    folder = tmp_path_factory.mktemp("mlflow-auth")
    ini = one(rendered(chart), "ConfigMap", "-mlflow-auth")["data"]["basic_auth.ini"]
    assert re.search(r"^database_uri = postgresql\+psycopg2://rel-mindzoo-postgresql\.", ini, re.M)
    (folder / "basic_auth.ini").write_text(
        re.sub(r"^database_uri = .*$", f"database_uri = sqlite:///{folder / 'auth.db'}", ini, flags=re.M))
    port = free_port()
    password = secrets.token_urlsafe(24)
    argv, env = mlflow_server.command("127.0.0.1", port, f"sqlite:///{folder / 'mlflow.db'}",
                                      f"http://{stack.s3_endpoint}",
                                      {"access_key": stack.access_key, "secret_key": stack.secret_key},
                                      app_name="basic-auth")
    env.update({"MLFLOW_AUTH_CONFIG_PATH": str(folder / "basic_auth.ini"), "MLFLOW_AUTH_ADMIN_USERNAME": ADMIN,
                "MLFLOW_AUTH_ADMIN_PASSWORD": password, "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(24)})
    url = f"http://127.0.0.1:{port}"
    service = process.Service("mlflow-auth", process.spawn(argv, folder / "mlflow.log", env=env), url,
                              f"{url}/health", str(folder / "mlflow.log"))
    try:
        process.wait_healthy(service, 120)
        yield {"url": url, "user": ADMIN, "password": password}
    finally:
        process.stop(service.pid)


def status_of(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=20) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_the_api_refuses_calls_without_the_right_credentials(chart, auth_mlflow):
    search = auth_mlflow["url"] + "/api/2.0/mlflow/experiments/search?max_results=1"
    assert status_of(search) == 401
    assert status_of(search, basic(ADMIN, "not-the-password")) == 401
    assert status_of(search, basic(ADMIN, auth_mlflow["password"])) == 200
    # The chart's probes, as the kubelet sends them (no credentials, the pod IP as Host).
    probes = one(rendered(chart), "Deployment", "-mlflow")["spec"]["template"]["spec"]["containers"][0]
    for probe in ("livenessProbe", "readinessProbe"):
        path = probes[probe]["httpGet"]["path"]
        assert status_of(auth_mlflow["url"] + path, {"Host": "10.1.2.3:5000"}) == 200, probe


def test_mindzoos_tracker_logs_a_run_with_mlflows_standard_variables(auth_mlflow, monkeypatch):
    from mlflow.tracking import MlflowClient

    from mindzoo.tracking import create_tracker

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", auth_mlflow["password"])
    tracker = create_tracker(auth_mlflow["url"], "mindzoo-auth-test", "run-a")
    tracker.log_params({"model": "googlenet", "optim.lr": 0.1})
    for step in range(3):
        tracker.log_metrics({"train/loss": 1.0 / (step + 1)}, step=step)
    report = tracker.finish()
    assert report.ok, report.message
    run = MlflowClient(auth_mlflow["url"]).get_run(report.run_id)
    assert run.data.params == {"model": "googlenet", "optim.lr": "0.1"}
    assert run.data.metrics["train/loss"] == pytest.approx(1 / 3)


def test_the_helm_test_program_passes_with_auth_on(chart, auth_mlflow):
    pod = one(rendered(chart), "Pod", "-test-mlflow")
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    assert env["MLFLOW_TRACKING_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "rel-mindzoo-mlflow-auth",
                                                                            "key": "password"}
    program = pod["spec"]["containers"][0]["command"][2]
    run = lambda **extra: subprocess.run(  # noqa: E731
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", "MLFLOW_TRACKING_URI": auth_mlflow["url"], **extra})
    passed = run(MLFLOW_TRACKING_USERNAME=ADMIN, MLFLOW_TRACKING_PASSWORD=auth_mlflow["password"])
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert f"basic auth (as {ADMIN})" in passed.stdout
    refused = run(MLFLOW_TRACKING_USERNAME=ADMIN, MLFLOW_TRACKING_PASSWORD="wrong")
    assert refused.returncode != 0 and "401" in refused.stderr, json.dumps([refused.stdout, refused.stderr[-500:]])
