"""charts/mindzoo rendered with the real Helm: lint, offline OpenAPI validation, and
what each value combination must (and must not) produce."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import pytest

from chartkit import CHART, CI_VALUES, by_kind, one, values_docs, values_table

pytestmark = [pytest.mark.control]

#: Every install combination: the chart's defaults and each ci/*-values.yaml.
COMBOS = [None, *[p.name for p in CI_VALUES]]
KUBERNETES_VERSION = "1.36.0"  # the API server the cluster tests run (tools/hyperkube/go.mod)


def render(chart, combo, values=None):
    return chart.template(values, *([combo] if combo else []))


def pod_specs(docs):
    """(owner, pod spec) for every pod the chart creates, directly or through a controller."""
    for doc in docs:
        kind = doc["kind"]
        if kind in ("Deployment", "StatefulSet", "Job"):
            yield f"{kind}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]
        elif kind == "Pod":
            yield f"Pod/{doc['metadata']['name']}", doc["spec"]


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}


# ------------------------------------------------------------------ lint/schema

@pytest.mark.parametrize("combo", COMBOS)
def test_helm_lint_is_clean(chart, combo):
    args = ["lint", "--strict", str(CHART)] + (["-f", str(CHART / "ci" / combo)] if combo else [])
    out = chart.helm(*args)
    assert "0 chart(s) failed" in out.stdout, out.stdout
    assert "[WARNING]" not in out.stdout and "[ERROR]" not in out.stdout, out.stdout


@pytest.mark.parametrize("combo", COMBOS)
def test_rendered_objects_match_the_kubernetes_openapi_schemas(chart, combo):
    import kubernetes_validate

    docs = render(chart, combo)
    assert docs
    for doc in docs:
        try:  # strict: unknown fields fail too (typos in templates)
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} ({combo or 'defaults'}): "
                        f"{'.'.join(map(str, exc.path))}: {exc.message}")


def test_values_schema_rejects_typos_and_bad_modes(chart):
    assert "replicaCont" in chart.template_error({"mlflow": {"replicaCont": 2}})
    assert "mode" in chart.template_error({"objectStore": {"mode": "s3"}})
    assert "mode" in chart.template_error({"database": {"mode": "mysql"}})


def test_every_value_has_a_comment():
    docs = values_docs()
    undocumented = [d.key for d in docs if not d.description]
    assert not undocumented, f"values.yaml keys without a `# --` comment: {undocumented}"
    head = (CHART / "values.yaml").read_text().splitlines()[0]
    assert head == "# yaml-language-server: $schema=values.schema.json"


def test_readme_values_table_is_generated_from_values_yaml():
    readme = CHART / "README.md"
    text = readme.read_text()
    start, end = "<!-- values:start -->\n", "\n<!-- values:end -->"
    table = values_table(values_docs())
    current = text[text.index(start) + len(start):text.index(end)]
    if current != table and os.environ.get("MINDZOO_UPDATE_CHART_README"):
        readme.write_text(text.replace(current, table))
        current = table
    assert current == table, ("charts/mindzoo/README.md's values table is stale: regenerate it with "
                              "MINDZOO_UPDATE_CHART_README=1 .venv-control/bin/python -m pytest tests/charts -k readme")


# -------------------------------------------------------------------- secrets

SECRET_FIELDS = ["postgresql.auth.password", "minio.auth.rootPassword", "minio.auth.secretKey",
                 "database.external.password", "objectStore.external.secretKey", "kfp.token"]


@pytest.mark.parametrize("key", SECRET_FIELDS)
def test_no_password_can_be_given_in_values(chart, key):
    head, leaf = key.rsplit(".", 1)
    values: dict = {}
    node = values
    for part in head.split("."):
        node = node.setdefault(part, {})
    node[leaf] = "hunter2"
    assert leaf in chart.template_error(values)


def test_generated_secrets_are_random_and_not_from_values(chart):
    first, second = render(chart, None), render(chart, None)
    values_text = (CHART / "values.yaml").read_text()
    expected = {"rel-mindzoo-minio": {"accesskey": 20, "secretkey": 40}, "rel-mindzoo-postgresql": {"password": 32},
                "rel-mindzoo-minio-tasks": {"accesskey": 20, "secretkey": 40}}
    secrets = {s["metadata"]["name"]: s for s in by_kind(first, "Secret")}
    assert set(secrets) == set(expected)
    again = {s["metadata"]["name"]: s for s in by_kind(second, "Secret")}
    for name, keys in expected.items():
        assert set(secrets[name]["data"]) == set(keys)
        for key, length in keys.items():
            value = base64.b64decode(secrets[name]["data"][key]).decode()
            assert re.fullmatch(rf"[A-Za-z0-9]{{{length}}}", value)
            assert value not in values_text
            assert again[name]["data"][key] != secrets[name]["data"][key], "a fresh install must generate new values"
        assert "stringData" not in secrets[name]


def test_external_and_existing_secrets_render_no_secret(chart):
    assert by_kind(render(chart, "external-values.yaml"), "Secret") == []
    docs = render(chart, None, {"minio": {"auth": {"existingSecret": "my-minio"},
                                          "tasksUser": {"existingSecret": "my-tasks"}},
                                "postgresql": {"auth": {"existingSecret": "my-db"}}})
    assert by_kind(docs, "Secret") == []
    minio_env = env_of(one(docs, "StatefulSet", "-minio")["spec"]["template"]["spec"]["containers"][0])
    assert minio_env["MINIO_ROOT_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "my-minio", "key": "secretkey"}
    db_env = env_of(one(docs, "StatefulSet", "-postgresql")["spec"]["template"]["spec"]["containers"][0])
    assert db_env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "my-db", "key": "password"}
    mlflow_env = env_of(one(docs, "Deployment", "-mlflow")["spec"]["template"]["spec"]["containers"][0])
    assert mlflow_env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "my-db"
    assert mlflow_env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "my-minio"


@pytest.mark.parametrize("combo", COMBOS)
def test_no_credential_appears_in_a_plain_value(chart, combo):
    for owner, spec in pod_specs(render(chart, combo)):
        for container in spec["containers"]:
            for name, var in env_of(container).items():
                if re.search(r"PASSWORD|SECRET|TOKEN$|ACCESS_KEY", name):
                    assert "valueFrom" in var, f"{owner}: {name} must come from a Secret"
            for arg in container.get("args", []):
                assert not re.search(r"://[^/@]*:[^/@]*@", arg), f"{owner}: credentials in an argument: {arg}"


# ----------------------------------------------------------- pod security

RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                      "projected", "secret"}


@pytest.mark.parametrize("combo", COMBOS)
def test_every_pod_meets_the_restricted_pod_security_standard(chart, combo):
    docs = render(chart, combo)
    specs = list(pod_specs(docs))
    assert len(specs) >= 4
    for owner, spec in specs:
        pod_sc = spec.get("securityContext", {})
        assert not (spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC")), owner
        assert spec.get("automountServiceAccountToken") is False, f"{owner} needs no API token"
        for volume in spec.get("volumes", []):
            assert set(volume) - {"name"} <= RESTRICTED_VOLUMES, f"{owner}: volume {volume}"
        for container in spec.get("initContainers", []) + spec["containers"]:
            sc = container.get("securityContext", {})
            where = f"{owner}/{container['name']}"
            assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, where
            assert sc.get("runAsUser", pod_sc.get("runAsUser", 1)) != 0, where
            seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
            assert seccomp in ("RuntimeDefault", "Localhost"), where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("privileged") is not True, where
            assert "ALL" in sc.get("capabilities", {}).get("drop", []), where
            assert set(sc.get("capabilities", {}).get("add", [])) <= {"NET_BIND_SERVICE"}, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert container.get("resources", {}).get("requests"), f"{where}: resource requests"
            assert container.get("resources", {}).get("limits", {}).get("memory"), f"{where}: memory limit"


def test_servers_have_probes(chart):
    docs = render(chart, None)
    for kind, suffix in (("Deployment", "-mlflow"), ("StatefulSet", "-minio"), ("StatefulSet", "-postgresql")):
        container = one(docs, kind, suffix)["spec"]["template"]["spec"]["containers"][0]
        assert container.get("livenessProbe") and container.get("readinessProbe"), f"{kind}{suffix}"


# ------------------------------------------------------------------------ RBAC

LAUNCHER_RULES = [
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "delete"]},
    {"apiGroups": ["trainer.kubeflow.org"], "resources": ["trainjobs"], "verbs": ["create", "get", "delete"]},
    {"apiGroups": [""], "resources": ["services"], "verbs": ["create", "delete"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
]


@pytest.mark.parametrize("combo", COMBOS)
def test_launcher_role_grants_exactly_what_the_launcher_uses(chart, combo):
    docs = render(chart, combo)
    role = one(docs, "Role", "-launcher")
    assert role["metadata"]["namespace"] == "ml"
    assert role["rules"] == LAUNCHER_RULES
    assert len(by_kind(docs, "Role")) == 1
    binding = one(docs, "RoleBinding", "-launcher")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "rel-mindzoo-pipeline", "namespace": "ml"}]
    assert one(docs, "ServiceAccount", "-pipeline")["metadata"]["name"] == "rel-mindzoo-pipeline"
    assert not by_kind(docs, "ClusterRole") and not by_kind(docs, "ClusterRoleBinding")


def test_servers_service_account_has_no_token(chart):
    docs = render(chart, None)
    account = one(docs, "ServiceAccount", "rel-mindzoo")
    assert account["automountServiceAccountToken"] is False
    for binding in by_kind(docs, "RoleBinding"):
        assert all(s["name"] != "rel-mindzoo" for s in binding["subjects"])


# ---------------------------------------------------------------------- MLflow

def mlflow_container(docs):
    return one(docs, "Deployment", "-mlflow")["spec"]["template"]["spec"]["containers"][0]


def test_mlflow_serves_proxied_artifacts_from_postgresql(chart):
    container = mlflow_container(render(chart, None))
    args = container["args"]
    assert args[0] == "server"
    assert "--host=0.0.0.0" in args and "--serve-artifacts" in args
    assert "--artifacts-destination=s3://mlflow/artifacts" in args
    assert "--backend-store-uri=postgresql+psycopg2://rel-mindzoo-postgresql.ml.svc.cluster.local:5432/mlflow" in args
    env = env_of(container)
    assert env["PGUSER"]["value"] == "mlflow"
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "rel-mindzoo-postgresql", "key": "password"}
    assert env["MLFLOW_S3_ENDPOINT_URL"]["value"] == "http://rel-mindzoo-minio.ml.svc.cluster.local:9000"
    assert container["image"] == "mindzoo/mlflow:3.17.2"


@pytest.mark.parametrize("combo", COMBOS)
def test_mlflow_allowed_hosts_cover_the_in_cluster_names(chart, combo):
    from mlflow.server.security_utils import is_allowed_host_header

    container = mlflow_container(render(chart, combo))
    allowed = [h.strip() for h in env_of(container)["MLFLOW_SERVER_ALLOWED_HOSTS"]["value"].split(",")]
    svc = "rel-mindzoo-mlflow"
    for host in (svc, f"{svc}:5000", f"{svc}.ml", f"{svc}.ml:5000", f"{svc}.ml.svc:5000",
                 f"{svc}.ml.svc.cluster.local", f"{svc}.ml.svc.cluster.local:5000",
                 "localhost:5000", "127.0.0.1:5000", "[::1]:5000"):
        assert is_allowed_host_header(allowed, host), f"MLflow would answer 403 to Host: {host}"
    for host in ("evil.example.com", f"{svc}.other:5000", f"{svc}.ml.svc.cluster.local.evil.com:5000", ""):
        assert not is_allowed_host_header(allowed, host), f"Host: {host} must be refused"
    if combo == "kfp-values.yaml":
        assert is_allowed_host_header(allowed, "mlflow.example.com")


def test_allowed_hosts_follow_the_cluster_domain(chart):
    from mlflow.server.security_utils import is_allowed_host_header

    allowed = env_of(mlflow_container(render(chart, None, {"clusterDomain": "corp.internal"})))[
        "MLFLOW_SERVER_ALLOWED_HOSTS"]["value"].split(",")
    assert is_allowed_host_header(allowed, "rel-mindzoo-mlflow.ml.svc.corp.internal:5000")


# ---------------------------------------------------------------- object store

def test_bundled_minio(chart):
    docs = render(chart, "bundled-values.yaml")
    minio = one(docs, "StatefulSet", "-minio")
    container = minio["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "mindzoo/minio:v0.0.0-20260212201848-7aac2a2c5b7c"
    assert container["args"][:2] == ["server", "/data"]
    assert minio["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert one(docs, "Service", "-minio")["spec"]["ports"][0]["port"] == 9000
    defaults = one(docs, "ConfigMap", "-pipeline-defaults")["data"]
    assert defaults["MINDZOO_S3_ENDPOINT"] == "rel-mindzoo-minio.ml.svc.cluster.local:9000"
    assert defaults["MINDZOO_S3_SECURE"] == "false"
    assert defaults["MINDZOO_S3_SECRET"] == "rel-mindzoo-minio-tasks"  # the scoped user's, not root's


def test_external_s3_replaces_minio(chart):
    docs = render(chart, "external-values.yaml")
    assert not [d for d in docs if d["metadata"]["name"].endswith("-minio")]
    env = env_of(mlflow_container(docs))
    assert env["MLFLOW_S3_ENDPOINT_URL"]["value"] == "http://seaweedfs.kubeflow:9000"
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"] == {"name": "mlpipeline-minio-artifact",
                                                                     "key": "accesskey"}
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "mlpipeline-minio-artifact",
                                                                         "key": "secretkey"}
    defaults = one(docs, "ConfigMap", "-pipeline-defaults")["data"]
    assert defaults["MINDZOO_S3_ENDPOINT"] == "seaweedfs.kubeflow:9000"
    assert defaults["MINDZOO_S3_SECRET"] == "mlpipeline-minio-artifact"
    https = render(chart, "external-values.yaml", {"objectStore": {"external": {"endpoint": "https://s3.example.com"}}})
    assert one(https, "ConfigMap", "-pipeline-defaults")["data"]["MINDZOO_S3_SECURE"] == "true"


def test_external_s3_needs_endpoint_and_existing_secret(chart):
    assert "endpoint" in chart.template_error({"objectStore": {"mode": "external",
                                                               "external": {"existingSecret": "s"}}})
    assert "existingSecret" in chart.template_error({"objectStore": {"mode": "external",
                                                                     "external": {"endpoint": "http://s3:9000"}}})


# -------------------------------------------------------------------- database

def test_external_database_via_existing_secret(chart):
    docs = render(chart, "external-values.yaml")
    assert not [d for d in docs if d["metadata"]["name"].endswith("-postgresql")]
    container = mlflow_container(docs)
    assert ("--backend-store-uri=postgresql+psycopg2://postgres.databases.svc.cluster.local:5432/mlflow"
            in container["args"])
    env = env_of(container)
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "mlflow-database", "key": "password"}
    assert env["PGUSER"]["valueFrom"]["secretKeyRef"] == {"name": "mlflow-database", "key": "username"}
    assert env["PGSSLMODE"]["value"] == "require"


def test_external_database_needs_host_and_existing_secret(chart):
    assert "existingSecret" in chart.template_error({"database": {"mode": "external", "external": {"host": "db"}}})
    assert "host" in chart.template_error({"database": {"mode": "external", "external": {"existingSecret": "s"}}})


# ------------------------------------------------------ pipeline defaults, setup

def test_pipeline_defaults_name_the_node_pools(chart):
    data = one(render(chart, None), "ConfigMap", "-pipeline-defaults")["data"]
    pools = json.loads(data["MINDZOO_NODE_POOLS"])
    assert pools["ascend910"]["resource"] == "huawei.com/Ascend910"
    assert pools["ascend910"]["nodeSelector"] == {"accelerator": "huawei-Ascend910"}
    assert pools["ascend910"]["tolerations"][0]["key"] == "huawei.com/Ascend910"
    assert pools["ascend310"]["resource"] == "huawei.com/Ascend310"
    assert pools["gpu"]["resource"] == "nvidia.com/gpu"
    assert data["MLFLOW_TRACKING_URI"] == "http://rel-mindzoo-mlflow.ml.svc.cluster.local:5000"
    assert data["MINDZOO_SERVICE_ACCOUNT"] == "rel-mindzoo-pipeline"
    assert data["MINDZOO_MODEL"] == "resnet50_bam" and data["MINDZOO_TRAIN_POOL"] == "ascend910"
    assert "is not a key of pipeline.nodePools" in chart.template_error({"pipeline": {"defaults": {"trainPool": "tpu"}}})


def test_setup_job_is_a_hook_that_skips_kfp_when_unconfigured(chart):
    docs = render(chart, None)
    job = one(docs, "Job", "-setup")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "post-install,post-upgrade"
    assert "hook-succeeded" in annotations["helm.sh/hook-delete-policy"]
    env = env_of(job["spec"]["template"]["spec"]["containers"][0])
    assert env["KFP_ENDPOINT"]["value"] == ""
    assert env["MINDZOO_BUCKETS"]["value"] == "mlflow,mindzoo"
    assert env["PIPELINE_VERSION"]["value"] == "0.1.0-r1"
    script = one(docs, "ConfigMap", "-setup")["data"]["setup.py"]
    assert script == (CHART / "files" / "setup.py").read_text()
    assert one(docs, "ConfigMap", "-pipelines")["data"] == {}
    off = render(chart, None, {"setup": {"enabled": False}, "minio": {"tasksUser": {"enabled": False}}})
    assert not [d for d in off if "-setup" in d["metadata"]["name"]]


def test_setup_job_uploads_configured_pipelines(chart):
    docs = render(chart, "kfp-values.yaml")
    job = one(docs, "Job", "-setup")
    spec = job["spec"]["template"]["spec"]
    env = env_of(spec["containers"][0])
    assert env["KFP_ENDPOINT"]["value"] == "http://ml-pipeline.kubeflow:8888"
    assert env["KFP_TOKEN_FILE"]["value"] == "/var/run/secrets/kubeflow/pipelines/token"
    token = next(v for v in spec["volumes"] if v["name"] == "kfp-token")
    assert token["projected"]["sources"][0]["serviceAccountToken"]["audience"] == "pipelines.kubeflow.org"
    pipelines = one(docs, "ConfigMap", "-pipelines")["data"]
    assert list(pipelines) == ["smoke.yaml"] and "schemaVersion: 2.1.0" in pipelines["smoke.yaml"]
    existing = render(chart, "kfp-values.yaml", {"kfp": {"existingPipelinesConfigMap": "compiled"}})
    volume = next(v for v in one(existing, "Job", "-setup")["spec"]["template"]["spec"]["volumes"]
                  if v["name"] == "pipelines")
    assert volume["configMap"]["name"] == "compiled"
    assert not [d for d in existing if d["metadata"]["name"].endswith("-pipelines")]


def test_helm_test_pods_check_mlflow_and_the_object_store(chart):
    docs = render(chart, None)
    pods = {p["metadata"]["name"]: p for p in by_kind(docs, "Pod")}
    assert set(pods) == {"rel-mindzoo-test-mlflow", "rel-mindzoo-test-object-store"}
    for pod in pods.values():
        assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
        assert pod["spec"]["restartPolicy"] == "Never"
    assert "not-allowed.example.com" in pods["rel-mindzoo-test-mlflow"]["spec"]["containers"][0]["command"][2]
    for name, pod in pods.items():  # the inline programs are valid Python as rendered
        command = pod["spec"]["containers"][0]["command"]
        assert command[:2] == ["python", "-c"]
        compile(command[2], name, "exec")


def test_notes_say_how_to_open_mlflow_and_submit_a_run(chart):
    out = chart.helm("install", "rel", str(CHART), "--namespace", "ml", "--dry-run=client").stdout
    notes = out[out.index("NOTES:"):]
    assert "port-forward svc/rel-mindzoo-mlflow 5000:5000" in notes
    assert "run create" in notes and "KFP is not configured" in notes
    out = chart.helm("install", "rel", str(CHART), "--namespace", "ml", "--dry-run=client",
                     "-f", str(CHART / "ci" / "kfp-values.yaml")).stdout
    assert "uploaded the compiled pipelines to http://ml-pipeline.kubeflow:8888" in out


def test_names_fit_kubernetes_limits(chart):
    docs = render(chart, None, {"fullnameOverride": "a" * 70})
    for doc in docs:
        name = doc["metadata"]["name"]
        assert len(name) <= 63, name
        if doc["kind"] == "StatefulSet":
            assert len(name) <= 52, f"StatefulSet {name}: its pods' controller-revision-hash label would overflow"


def test_chart_files_exist():
    for path in ("Chart.yaml", "values.yaml", "values.schema.json", "README.md", "templates/NOTES.txt",
                 "templates/_helpers.tpl", "files/setup.py"):
        assert (CHART / path).is_file(), path
    assert Path(CHART / "ci").is_dir() and len(CI_VALUES) >= 3
