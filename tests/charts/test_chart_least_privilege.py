"""charts/mindzoo rendered with the real Helm: which credentials reach which pod. In bundled
MinIO mode, pipeline tasks, the launcher's workers and the object-store test pod get the
scoped tasks' user (created by the setup Job, proven against the real MinIO in
test_chart_setup_job.py); MinIO, MLflow and the setup Job keep the root keys. In external
mode the operator's Secret reaches everyone, as before."""

from __future__ import annotations

import pytest

from chartkit import by_kind, one

pytestmark = [pytest.mark.control]


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}


def secret_of(var):
    return var["valueFrom"]["secretKeyRef"]["name"]


def containers(docs):
    """{object name: its first container} of every workload and test pod."""
    out = {}
    for doc in docs:
        spec = doc["spec"] if doc["kind"] == "Pod" else doc.get("spec", {}).get("template", {}).get("spec")
        if doc["kind"] in ("Deployment", "StatefulSet", "Job", "Pod"):
            out[doc["metadata"]["name"]] = spec["containers"][0]
    return out


def test_tasks_get_the_scoped_user_and_root_keys_stay_with_the_servers(chart):
    docs = chart.template()
    defaults = one(docs, "ConfigMap", "-pipeline-defaults")["data"]
    assert defaults["MINDZOO_S3_SECRET"] == "rel-mindzoo-minio-tasks"
    assert (defaults["MINDZOO_S3_ACCESS_KEY_KEY"], defaults["MINDZOO_S3_SECRET_KEY_KEY"]) == ("accesskey", "secretkey")
    tasks = one(docs, "Secret", "-minio-tasks")
    assert tasks["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}  # kept with the data claim
    assert set(tasks["data"]) == {"accesskey", "secretkey"}
    pods = containers(docs)
    minio = env_of(pods["rel-mindzoo-minio"])
    assert secret_of(minio["MINIO_ROOT_USER"]) == secret_of(minio["MINIO_ROOT_PASSWORD"]) == "rel-mindzoo-minio"
    assert secret_of(env_of(pods["rel-mindzoo-mlflow"])["AWS_SECRET_ACCESS_KEY"]) == "rel-mindzoo-minio"
    setup = env_of(pods["rel-mindzoo-setup"])
    assert secret_of(setup["AWS_SECRET_ACCESS_KEY"]) == "rel-mindzoo-minio"  # root: it creates the user
    assert secret_of(setup["SCOPED_ACCESS_KEY"]) == secret_of(setup["SCOPED_SECRET_KEY"]) == "rel-mindzoo-minio-tasks"
    assert setup["SCOPED_BUCKETS"]["value"] == "mindzoo"  # the data bucket only, not MLflow's
    assert setup["SCOPED_POLICY"]["value"] == "rel-mindzoo-tasks"
    store_test = env_of(pods["rel-mindzoo-test-object-store"])
    assert secret_of(store_test["AWS_SECRET_ACCESS_KEY"]) == "rel-mindzoo-minio-tasks"
    assert store_test["SCOPED"]["value"] == "true"
    # Nothing a task runs as may read the root Secret by name: only these reference it.
    readers = {name for name, c in pods.items()
               if any(e.get("valueFrom", {}).get("secretKeyRef", {}).get("name") == "rel-mindzoo-minio"
                      for e in c.get("env", []))}
    assert readers == {"rel-mindzoo-minio", "rel-mindzoo-mlflow", "rel-mindzoo-setup"}


def test_extra_buckets_and_an_existing_tasks_secret(chart):
    docs = chart.template({"minio": {"tasksUser": {"existingSecret": "my-tasks", "extraBuckets": ["raw", "mindzoo"]}}})
    assert not [s for s in by_kind(docs, "Secret") if s["metadata"]["name"].endswith("-minio-tasks")]
    assert one(docs, "ConfigMap", "-pipeline-defaults")["data"]["MINDZOO_S3_SECRET"] == "my-tasks"
    setup = env_of(containers(docs)["rel-mindzoo-setup"])
    assert setup["SCOPED_BUCKETS"]["value"] == "mindzoo,raw"
    assert secret_of(setup["SCOPED_ACCESS_KEY"]) == "my-tasks"
    assert "pattern" in chart.template_error({"minio": {"tasksUser": {"extraBuckets": ["Bad_Bucket"]}}})


def test_turned_off_tasks_get_the_root_credentials(chart):
    docs = chart.template({"minio": {"tasksUser": {"enabled": False}}})
    assert one(docs, "ConfigMap", "-pipeline-defaults")["data"]["MINDZOO_S3_SECRET"] == "rel-mindzoo-minio"
    assert not [s for s in by_kind(docs, "Secret") if s["metadata"]["name"].endswith("-minio-tasks")]
    setup = env_of(containers(docs)["rel-mindzoo-setup"])
    assert "SCOPED_ACCESS_KEY" not in setup
    assert env_of(containers(docs)["rel-mindzoo-test-object-store"])["SCOPED"]["value"] == "false"


def test_the_scoped_user_needs_the_setup_job(chart):
    error = chart.template_error({"setup": {"enabled": False}})
    assert "minio.tasksUser.enabled needs setup.enabled" in error


def test_external_mode_is_unchanged(chart):
    docs = chart.template(None, "external-values.yaml")
    assert by_kind(docs, "Secret") == []
    assert one(docs, "ConfigMap", "-pipeline-defaults")["data"]["MINDZOO_S3_SECRET"] == "mlpipeline-minio-artifact"
    pods = containers(docs)
    setup = env_of(pods["rel-mindzoo-setup"])
    assert "SCOPED_ACCESS_KEY" not in setup
    for name in ("rel-mindzoo-mlflow", "rel-mindzoo-setup", "rel-mindzoo-test-object-store"):
        assert secret_of(env_of(pods[name])["AWS_SECRET_ACCESS_KEY"]) == "mlpipeline-minio-artifact", name
    assert env_of(pods["rel-mindzoo-test-object-store"])["SCOPED"]["value"] == "false"


# ------------------------------------------------------------------- mlflow.auth

def test_mlflow_auth_is_off_by_default(chart):
    docs = chart.template()
    mlflow = containers(docs)["rel-mindzoo-mlflow"]
    assert not [a for a in mlflow["args"] if "app-name" in a]
    assert not [n for n in env_of(mlflow) if n.startswith("MLFLOW_AUTH")]
    assert mlflow["readinessProbe"]["httpGet"]["path"] == "/version"
    assert not [d for d in docs if d["metadata"]["name"].endswith("-mlflow-auth")]
    assert "MINDZOO_MLFLOW_SECRET" not in one(docs, "ConfigMap", "-pipeline-defaults")["data"]
    assert "MLFLOW_TRACKING_USERNAME" not in env_of(containers(docs)["rel-mindzoo-test-mlflow"])


@pytest.mark.parametrize("combo", [None, "external-values.yaml"])
def test_mlflow_auth_on_runs_the_basic_auth_app_with_a_kept_generated_admin(chart, combo):
    docs = chart.template({"mlflow": {"auth": {"enabled": True}}}, *([combo] if combo else []))
    mlflow = containers(docs)["rel-mindzoo-mlflow"]
    assert "--app-name=basic-auth" in mlflow["args"]
    env = env_of(mlflow)
    assert env["MLFLOW_AUTH_CONFIG_PATH"]["value"] == "/etc/mlflow-auth/basic_auth.ini"
    for name, key in (("MLFLOW_AUTH_ADMIN_USERNAME", "username"), ("MLFLOW_AUTH_ADMIN_PASSWORD", "password"),
                      ("MLFLOW_FLASK_SERVER_SECRET_KEY", "flask-secret-key")):
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "rel-mindzoo-mlflow-auth", "key": key}
    assert {"name": "auth", "mountPath": "/etc/mlflow-auth", "readOnly": True} in mlflow["volumeMounts"]
    assert mlflow["readinessProbe"]["httpGet"]["path"] == "/health?probe=readiness"  # all else answers 401
    ini = one(docs, "ConfigMap", "-mlflow-auth")["data"]["basic_auth.ini"]
    assert "default_permission = READ" in ini and "database_uri = postgresql+psycopg2://" in ini
    assert "@" not in ini.split("database_uri = ")[1].splitlines()[0]  # no credentials in it: libpq reads PG*
    secret = one(docs, "Secret", "-mlflow-auth")
    assert set(secret["data"]) == {"username", "password", "flask-secret-key"}
    # Kept on uninstall: the admin lives in the database, which outlives the release in both modes.
    assert secret["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert one(docs, "ConfigMap", "-pipeline-defaults")["data"]["MINDZOO_MLFLOW_SECRET"] == "rel-mindzoo-mlflow-auth"
    test_env = env_of(containers(docs)["rel-mindzoo-test-mlflow"])
    assert test_env["MLFLOW_TRACKING_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "rel-mindzoo-mlflow-auth"


def test_mlflow_auth_with_an_existing_secret_and_throwaway_database(chart):
    docs = chart.template({"mlflow": {"auth": {"enabled": True, "existingSecret": "my-mlflow-login",
                                               "defaultPermission": "NO_PERMISSIONS"}}})
    assert not [s for s in by_kind(docs, "Secret") if s["metadata"]["name"].endswith("-mlflow-auth")]
    assert "default_permission = NO_PERMISSIONS" in one(docs, "ConfigMap", "-mlflow-auth")["data"]["basic_auth.ini"]
    env = env_of(containers(docs)["rel-mindzoo-mlflow"])
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "my-mlflow-login"
    throwaway = chart.template({"mlflow": {"auth": {"enabled": True}},
                                "postgresql": {"persistence": {"whenDeleted": "Delete"}}})
    assert "annotations" not in one(throwaway, "Secret", "-mlflow-auth")["metadata"]
    assert "defaultPermission" in chart.template_error({"mlflow": {"auth": {"defaultPermission": "ALL"}}})
