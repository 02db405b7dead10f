"""The programs the chart runs in containers, run here against real servers: the
setup Job's (charts/mindzoo/files/setup.py) against the local stack's MinIO and a
stand-in KFP API server, and the `helm test` pods' against the local stack's MLflow
and MinIO.

The KFP stand-in serves the v2beta1 endpoints the program calls; what it stores is
read back through the real ``kfp.Client`` so its answers (and so the program's
expectations) have the shapes KFP's own client parses.
"""

from __future__ import annotations

import email.parser
import json
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from chartkit import CHART

pytestmark = [pytest.mark.control, pytest.mark.stack]
SETUP = CHART / "files" / "setup.py"


def run_setup(env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SETUP)], capture_output=True, text=True, timeout=timeout,
                          env={"PATH": "/usr/bin:/bin", "SETUP_TIMEOUT": "30", **env})


def s3_env(stack, **extra: str) -> dict[str, str]:
    return {"S3_ENDPOINT": f"http://{stack.s3_endpoint}", "AWS_ACCESS_KEY_ID": stack.access_key,
            "AWS_SECRET_ACCESS_KEY": stack.secret_key, "AWS_DEFAULT_REGION": "us-east-1", **extra}


# ------------------------------------------------------------- a KFP stand-in

class FakeKfp:
    """Pipelines and versions in memory, behind KFP's v2beta1 upload/list endpoints."""

    def __init__(self) -> None:
        self.pipelines: dict[str, dict] = {}
        self.versions: dict[str, list[dict]] = {}
        self.auth: list[str | None] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def reply(self, body: dict, status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                fake.auth.append(self.headers.get("Authorization"))
                url = urlparse(self.path)
                query = parse_qs(url.query)
                wanted = _filter_value(query)
                parts = url.path.split("/")
                if url.path == "/apis/v2beta1/healthz":  # kfp.Client asks first
                    return self.reply({"multi_user": False})
                if url.path == "/apis/v2beta1/pipelines":
                    items = [p for p in fake.pipelines.values() if wanted in (None, p["display_name"])]
                    return self.reply({"pipelines": items, "total_size": len(items)})
                if url.path.startswith("/apis/v2beta1/pipelines/") and parts[-1] == "versions":
                    items = [v for v in fake.versions.get(parts[-2], []) if wanted in (None, v["display_name"])]
                    return self.reply({"pipeline_versions": items, "total_size": len(items)})
                self.reply({"error": "not found"}, 404)

            def do_POST(self) -> None:
                fake.auth.append(self.headers.get("Authorization"))
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                body = self.rfile.read(int(self.headers["Content-Length"]))
                message = email.parser.BytesParser().parsebytes(
                    f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + body)
                files = {part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
                         for part in message.get_payload()}
                if b"schemaVersion" not in files.get("uploadfile", b""):
                    return self.reply({"error": "not a pipeline"}, 400)
                now = "2026-01-01T00:00:00Z"
                if url.path == "/apis/v2beta1/pipelines/upload":
                    pid = uuid.uuid4().hex
                    fake.pipelines[pid] = {"pipeline_id": pid, "name": query["name"],
                                           "display_name": query["display_name"], "created_at": now}
                    fake.versions[pid] = [{"pipeline_id": pid, "pipeline_version_id": uuid.uuid4().hex,
                                           "name": query["name"], "display_name": query["display_name"],
                                           "created_at": now}]
                    return self.reply(fake.pipelines[pid])
                if url.path == "/apis/v2beta1/pipelines/upload_version":
                    pid = query["pipelineid"]
                    version = {"pipeline_id": pid, "pipeline_version_id": uuid.uuid4().hex, "name": query["name"],
                               "display_name": query["display_name"], "created_at": now}
                    fake.versions[pid].append(version)
                    return self.reply(version)
                self.reply({"error": "not found"}, 404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _filter_value(query: dict) -> str | None:
    if "filter" not in query:
        return None
    predicates = json.loads(query["filter"][0])["predicates"]
    assert predicates[0]["key"] == "display_name" and predicates[0]["operation"] == "EQUALS"
    return predicates[0]["string_value"]


@pytest.fixture
def kfp_server():
    server = FakeKfp()
    yield server
    server.server.shutdown()


@pytest.fixture
def pipelines_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "pipelines"
    folder.mkdir()
    (folder / "train.yaml").write_text("pipelineInfo:\n  name: train\nschemaVersion: 2.1.0\n")
    return folder


# -------------------------------------------------------------------- the tests

def test_creates_the_buckets_once_and_skips_kfp_when_unconfigured(stack, pipelines_dir):
    from minio import Minio

    suffix = uuid.uuid4().hex[:6]
    buckets = f"mlflow-{suffix},data-{suffix}"
    env = s3_env(stack, MINDZOO_BUCKETS=buckets, PIPELINES_DIR=str(pipelines_dir))
    first = run_setup(env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"bucket mlflow-{suffix}: created" in first.stdout
    assert "KFP is not configured (kfp.endpoint is empty): skipping the upload of 1 compiled pipeline(s)" in first.stdout
    client = Minio(stack.s3_endpoint, stack.access_key, stack.secret_key, secure=False)
    assert client.bucket_exists(f"mlflow-{suffix}") and client.bucket_exists(f"data-{suffix}")
    again = run_setup(env)
    assert again.returncode == 0 and f"bucket data-{suffix}: exists" in again.stdout


def test_wrong_credentials_fail_at_once(stack):
    start = time.monotonic()
    proc = run_setup(s3_env(stack, AWS_SECRET_ACCESS_KEY="wrong", MINDZOO_BUCKETS="mlflow"))
    assert proc.returncode != 0
    assert "check the credentials Secret" in proc.stderr
    assert time.monotonic() - start < 20, "wrong credentials must not be retried until the deadline"


def test_an_object_store_that_never_answers_gives_up_at_the_deadline():
    proc = run_setup({"S3_ENDPOINT": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b",
                      "MINDZOO_BUCKETS": "mlflow", "SETUP_TIMEOUT": "3"})
    assert proc.returncode != 0 and "gave up after 3 s" in proc.stderr


def test_uploads_a_pipeline_then_a_new_version_per_upgrade(stack, kfp_server, pipelines_dir):
    env = s3_env(stack, MINDZOO_BUCKETS="", KFP_ENDPOINT=kfp_server.url, PIPELINES_DIR=str(pipelines_dir),
                 KFP_TOKEN="t0ken")
    install = run_setup({**env, "PIPELINE_VERSION": "0.1.0-r1"})
    assert install.returncode == 0, install.stdout + install.stderr
    assert "pipeline train: uploaded" in install.stdout
    upgrade = run_setup({**env, "PIPELINE_VERSION": "0.1.0-r2"})
    assert "pipeline train: uploaded version 0.1.0-r2-" in upgrade.stdout, upgrade.stdout + upgrade.stderr
    rerun = run_setup({**env, "PIPELINE_VERSION": "0.1.0-r2"})
    assert "already uploaded" in rerun.stdout, rerun.stdout + rerun.stderr
    assert set(kfp_server.auth) == {"Bearer t0ken"}

    import kfp

    client = kfp.Client(host=kfp_server.url)
    pipelines = client.list_pipelines().pipelines
    assert [p.display_name for p in pipelines] == ["train"]
    versions = client.list_pipeline_versions(pipelines[0].pipeline_id).pipeline_versions
    assert [v.display_name for v in versions][0] == "train"
    assert versions[1].display_name.startswith("0.1.0-r2-") and len(versions) == 2


def test_a_rejected_pipeline_fails_the_job(stack, kfp_server, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "broken.yaml").write_text("not: a pipeline\n")
    proc = run_setup({"KFP_ENDPOINT": kfp_server.url, "PIPELINES_DIR": str(folder), "MINDZOO_BUCKETS": ""})
    assert proc.returncode != 0 and "HTTP 400" in proc.stderr


def test_creates_a_scoped_user_that_reaches_only_the_data_bucket(stack):
    """The user tasks and workers run as in bundled mode, created on the real MinIO with root keys: it reads,
    writes, lists and deletes in the data bucket and is refused everything else; a re-run (an upgrade) with a
    new secret key succeeds and the old key stops working."""
    import io

    from minio import Minio, MinioAdmin
    from minio.credentials import StaticProvider
    from minio.error import MinioAdminException, S3Error

    suffix = uuid.uuid4().hex[:6]
    data, other = f"data-{suffix}", f"mlflow-{suffix}"
    user, first_key, second_key = f"tasks-{suffix}", uuid.uuid4().hex, uuid.uuid4().hex
    env = s3_env(stack, MINDZOO_BUCKETS=f"{other},{data}", SCOPED_ACCESS_KEY=user, SCOPED_SECRET_KEY=first_key,
                 SCOPED_BUCKETS=data, SCOPED_POLICY=f"tasks-{suffix}")
    created = run_setup(env)
    assert created.returncode == 0, created.stdout + created.stderr
    assert f"policy tasks-{suffix} on {data}" in created.stdout and first_key not in created.stdout
    upgraded = run_setup({**env, "SCOPED_SECRET_KEY": second_key})
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr

    scoped = Minio(stack.s3_endpoint, user, second_key, secure=False)
    scoped.put_object(data, "steps/ok.txt", io.BytesIO(b"ok"), 2)
    assert scoped.get_object(data, "steps/ok.txt").read() == b"ok"
    assert scoped.bucket_exists(data)
    assert [o.object_name for o in scoped.list_objects(data, "steps/")] == ["steps/ok.txt"]
    scoped.remove_object(data, "steps/ok.txt")
    refused = {"put in the MLflow bucket": lambda: scoped.put_object(other, "x", io.BytesIO(b"x"), 1),
               "list the MLflow bucket": lambda: list(scoped.list_objects(other)),
               "create a bucket": lambda: scoped.make_bucket(f"new-{suffix}"),
               "delete the data bucket": lambda: scoped.remove_bucket(data)}
    for what, action in refused.items():
        with pytest.raises(S3Error) as denied:
            action()
        assert denied.value.code == "AccessDenied", what
    with pytest.raises(MinioAdminException, match="AccessDenied"):
        MinioAdmin(endpoint=stack.s3_endpoint, credentials=StaticProvider(user, second_key), secure=False).user_list()
    with pytest.raises(S3Error) as stale:
        Minio(stack.s3_endpoint, user, first_key, secure=False).bucket_exists(data)
    assert stale.value.code in ("InvalidAccessKeyId", "SignatureDoesNotMatch")


def test_the_scoped_user_is_skipped_in_external_mode_and_refused_without_root_keys(stack):
    skipped = run_setup(s3_env(stack, MINDZOO_BUCKETS=""))
    assert skipped.returncode == 0 and "no scoped object-store user to create" in skipped.stdout
    proc = run_setup(s3_env(stack, AWS_SECRET_ACCESS_KEY="wrong", MINDZOO_BUCKETS="", SCOPED_ACCESS_KEY="tasks-x",
                            SCOPED_SECRET_KEY="k" * 20, SCOPED_BUCKETS="mindzoo"))
    assert proc.returncode != 0 and "creating the scoped user" in proc.stderr, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


# ------------------------------------------------- the `helm test` programs

def helm_test_program(chart, name: str) -> str:
    pod = next(d for d in chart.template() if d["kind"] == "Pod" and d["metadata"]["name"] == f"rel-mindzoo-{name}")
    return pod["spec"]["containers"][0]["command"][2]


def test_the_helm_test_programs_pass_against_the_real_mlflow_and_minio(chart, stack):
    """The programs the chart's test pods run, run here against the local stack's
    MLflow 3.17.2 (its Host-header check on) and MinIO, with the same environment; the
    object-store one as the scoped tasks' user (bundled mode) and with root-like keys (external)."""
    mlflow = subprocess.run([sys.executable, "-c", helm_test_program(chart, "test-mlflow")], capture_output=True,
                            text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp",
                                                         "MLFLOW_TRACKING_URI": stack.mlflow_uri})
    assert mlflow.returncode == 0, mlflow.stdout + mlflow.stderr
    assert "MLflow OK" in mlflow.stdout
    # As the chart runs it by default: with the scoped tasks' user the setup program creates.
    user, key = f"helm-test-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    created = run_setup(s3_env(stack, MINDZOO_BUCKETS="", SCOPED_ACCESS_KEY=user, SCOPED_SECRET_KEY=key,
                               SCOPED_BUCKETS="mindzoo", SCOPED_POLICY="helm-test-tasks"))
    assert created.returncode == 0, created.stdout + created.stderr
    def object_store_pod(scoped: str, access_key: str, secret_key: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", helm_test_program(chart, "test-object-store")],
                              capture_output=True, text=True, timeout=120,
                              env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", "BUCKETS": "mlflow,mindzoo",
                                   "SCOPED": scoped, "MLFLOW_S3_ENDPOINT_URL": f"http://{stack.s3_endpoint}",
                                   "AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key,
                                   "AWS_DEFAULT_REGION": "us-east-1"})

    for scoped, keys in (("true", (user, key)), ("false", (stack.access_key, stack.secret_key))):
        store = object_store_pod(scoped, *keys)
        assert store.returncode == 0, store.stdout + store.stderr
        assert "object store OK" in store.stdout
        assert ("mlflow refused" in store.stdout) == (scoped == "true"), store.stdout
    # The root keys given where the scoped user's belong: the pod notices the policy is missing.
    loose = object_store_pod("true", stack.access_key, stack.secret_key)
    assert loose.returncode != 0 and "its policy is not applied" in loose.stderr
