#!/usr/bin/env python3
"""mindzoo's post-install/post-upgrade setup (run by the chart's hook Job).

1. Creates the object-store buckets (``MINDZOO_BUCKETS``, comma-separated) that
   do not exist yet, on the bundled MinIO or an external S3 endpoint.
2. On the bundled MinIO (``SCOPED_ACCESS_KEY`` set), creates or updates the scoped
   user pipeline tasks and workers run as: its keys from ``SCOPED_ACCESS_KEY`` /
   ``SCOPED_SECRET_KEY``, one policy (``SCOPED_POLICY``) allowing object reads,
   writes, deletes and listing in ``SCOPED_BUCKETS`` only. Re-running puts the same
   policy, keys and mapping back, so every upgrade repairs drift.
3. When a KFP endpoint is configured (``KFP_ENDPOINT``), uploads every compiled
   pipeline ``<name>.yaml`` in ``PIPELINES_DIR``: a new pipeline the first time,
   a new pipeline version (``<PIPELINE_VERSION>-<sha256[:10]>``) on every
   later install/upgrade. Without an endpoint it says so and does nothing.

Runs in the MLflow image (Python, boto3, requests, minio); no kfp package needed,
it speaks KFP's v2beta1 REST API. MinIO's admin API (encrypted request bodies) is
spoken by the ``minio`` package's ``MinioAdmin``. Connection failures and 5xx answers are retried
until ``SETUP_TIMEOUT`` seconds have passed (the bundled MinIO may still be
starting); any other error (wrong credentials, a rejected pipeline) fails at
once with the server's message.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

API = "/apis/v2beta1"


class Retryable(Exception):
    """A failure worth another try: the server is not up yet, or answered 5xx."""


def log(message: str) -> None:
    print(f"mindzoo-setup: {message}", flush=True)


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def retry(what: str, action, deadline: float):
    delay = 1.0
    while True:
        try:
            return action()
        except Retryable as exc:
            if time.monotonic() + delay > deadline:
                raise SystemExit(f"mindzoo-setup: {what}: gave up after {env('SETUP_TIMEOUT', '300')} s: {exc}")
            log(f"{what}: {exc}; retrying in {delay:.0f} s")
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


# ---------------------------------------------------------------- object store

def ensure_buckets(deadline: float) -> None:
    buckets = [b.strip() for b in env("MINDZOO_BUCKETS").split(",") if b.strip()]
    if not buckets:
        log("bucket creation is off (objectStore.createBuckets=false)")
        return
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError, ConnectionError as BotoConnectionError, EndpointConnectionError

    endpoint = env("S3_ENDPOINT")
    region = env("AWS_DEFAULT_REGION", "us-east-1")
    s3 = boto3.client("s3", endpoint_url=endpoint or None, region_name=region,
                      config=Config(s3={"addressing_style": "path"}, connect_timeout=5, read_timeout=30,
                                    retries={"max_attempts": 1}))

    def ensure(bucket: str) -> str:
        try:
            try:
                s3.head_bucket(Bucket=bucket)
                return "exists"
            except ClientError as exc:
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                if status >= 500:
                    raise Retryable(f"HTTP {status} from {endpoint}") from exc
                if status != 404:
                    raise SystemExit(f"mindzoo-setup: bucket {bucket}: HTTP {status} from {endpoint} "
                                     f"({exc.response.get('Error', {}).get('Code', '')}): check the credentials Secret")
            kwargs = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
            try:
                s3.create_bucket(Bucket=bucket, **kwargs)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    return "exists"
                raise SystemExit(f"mindzoo-setup: creating bucket {bucket} at {endpoint}: {exc}")
            return "created"
        except (EndpointConnectionError, BotoConnectionError) as exc:
            raise Retryable(str(exc)) from exc

    for bucket in buckets:
        log(f"bucket {bucket}: {retry(f'bucket {bucket} at {endpoint}', lambda b=bucket: ensure(b), deadline)}")


# ---------------------------------------------------------- scoped MinIO user

#: Bucket-level and object-level actions the steps use (minio-py: bucket_exists, list_objects,
#: stat/get/put/remove_object, multipart uploads of large shards); nothing that creates, deletes
#: or reconfigures a bucket, and no admin action.
BUCKET_ACTIONS = ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"]
OBJECT_ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                  "s3:ListMultipartUploadParts"]


def scoped_policy(buckets: list[str]) -> dict:
    """The IAM policy of the tasks' user: objects in ``buckets`` and nothing else."""
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": BUCKET_ACTIONS, "Resource": [f"arn:aws:s3:::{b}" for b in buckets]},
        {"Effect": "Allow", "Action": OBJECT_ACTIONS, "Resource": [f"arn:aws:s3:::{b}/*" for b in buckets]},
    ]}


def ensure_scoped_user(deadline: float) -> None:
    access_key, secret_key = env("SCOPED_ACCESS_KEY"), env("SCOPED_SECRET_KEY")
    if not access_key:
        log("no scoped object-store user to create (objectStore.mode=external: tasks use the given Secret)")
        return
    buckets = [b.strip() for b in env("SCOPED_BUCKETS").split(",") if b.strip()]
    if not (secret_key and buckets):
        raise SystemExit("mindzoo-setup: SCOPED_SECRET_KEY and SCOPED_BUCKETS must be set with SCOPED_ACCESS_KEY")
    import urllib3
    from minio import MinioAdmin
    from minio.credentials import StaticProvider
    from minio.error import MinioAdminException

    endpoint = env("S3_ENDPOINT")
    policy = env("SCOPED_POLICY", "mindzoo-tasks")
    # No retries inside urllib3: retry() below owns the schedule and the deadline.
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=5, read=30), retries=False)
    admin = MinioAdmin(endpoint=endpoint.split("://", 1)[-1], secure=endpoint.startswith("https://"),
                       credentials=StaticProvider(env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")),
                       http_client=http)

    def ensure() -> None:
        try:
            admin.policy_add(policy, policy=scoped_policy(buckets))  # replaces an older version
            admin.user_add(access_key, secret_key)  # (re)sets the key of an existing user
            admin.policy_set(policy, user=access_key)  # the user's only policy, idempotently
        except urllib3.exceptions.HTTPError as exc:
            raise Retryable(f"{endpoint} does not answer ({exc.__class__.__name__})") from exc
        except MinioAdminException as exc:
            code = str(getattr(exc, "_code", ""))
            if code.startswith("5"):
                raise Retryable(f"HTTP {code} from {endpoint}") from exc
            raise SystemExit(f"mindzoo-setup: creating the scoped user at {endpoint}: {exc} "
                             "(the setup Job needs MinIO's root credentials)")

    retry(f"scoped user at {endpoint}", ensure, deadline)
    log(f"scoped user {access_key[:4]}...: policy {policy} on {', '.join(buckets)}")


# ------------------------------------------------------------------------- KFP

class Kfp:
    """The few calls of KFP's v2beta1 REST API the upload needs."""

    def __init__(self, endpoint: str, namespace: str, token: str, deadline: float):
        import requests

        self.requests = requests
        self.base = endpoint.rstrip("/")
        self.namespace = namespace
        self.deadline = deadline
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, *, params=None, files=None) -> dict:
        url = self.base + API + path

        def once():
            try:
                resp = self.session.request(method, url, params=params, files=files, timeout=60)
            except self.requests.ConnectionError as exc:
                raise Retryable(f"{self.base} does not answer ({exc.__class__.__name__})") from exc
            if resp.status_code >= 500:
                raise Retryable(f"HTTP {resp.status_code} from {method} {path}: {resp.text[:300]}")
            if resp.status_code >= 400:
                raise SystemExit(f"mindzoo-setup: KFP answered HTTP {resp.status_code} to {method} {path}: {resp.text[:500]}")
            return resp.json() if resp.content else {}

        return retry(f"KFP {method} {path}", once, self.deadline)

    def _filter(self, name: str) -> str:
        return json.dumps({"predicates": [{"key": "display_name", "operation": "EQUALS", "string_value": name}]})

    def find_pipeline(self, name: str) -> str | None:
        params = {"filter": self._filter(name), "page_size": 100}
        if self.namespace:
            params["namespace"] = self.namespace
        for item in self.call("GET", "/pipelines", params=params).get("pipelines") or []:
            if name in (item.get("display_name"), item.get("name")):
                return item["pipeline_id"]
        return None

    def has_version(self, pipeline_id: str, version: str) -> bool:
        params = {"filter": self._filter(version), "page_size": 100}
        items = self.call("GET", f"/pipelines/{pipeline_id}/versions", params=params).get("pipeline_versions") or []
        return any(version in (v.get("display_name"), v.get("name")) for v in items)

    def upload_pipeline(self, name: str, path: Path) -> str:
        params = {"name": name, "display_name": name, "description": f"mindzoo pipeline {name}"}
        if self.namespace:
            params["namespace"] = self.namespace
        with path.open("rb") as handle:
            return self.call("POST", "/pipelines/upload", params=params,
                             files={"uploadfile": (path.name, handle, "application/x-yaml")})["pipeline_id"]

    def upload_version(self, pipeline_id: str, version: str, path: Path) -> str:
        params = {"name": version, "display_name": version, "pipelineid": pipeline_id}
        with path.open("rb") as handle:
            return self.call("POST", "/pipelines/upload_version", params=params,
                             files={"uploadfile": (path.name, handle, "application/x-yaml")})["pipeline_version_id"]


def kfp_token() -> str:
    if env("KFP_TOKEN"):
        return env("KFP_TOKEN")
    token_file = env("KFP_TOKEN_FILE")
    return Path(token_file).read_text().strip() if token_file and Path(token_file).exists() else ""


def upload_pipelines(deadline: float) -> None:
    folder = Path(env("PIPELINES_DIR", "/pipelines"))
    files = sorted(p for p in folder.glob("*.y*ml") if p.is_file()) if folder.is_dir() else []
    endpoint = env("KFP_ENDPOINT")
    if not endpoint:
        log(f"KFP is not configured (kfp.endpoint is empty): skipping the upload of {len(files)} compiled pipeline(s)")
        return
    if not files:
        log(f"no compiled pipelines in {folder} (kfp.pipelines is empty): nothing to upload to {endpoint}")
        return
    kfp = Kfp(endpoint, env("KFP_NAMESPACE"), kfp_token(), deadline)
    prefix = env("PIPELINE_VERSION", "0")
    for path in files:
        name = path.name.rsplit(".", 1)[0]
        version = f"{prefix}-{hashlib.sha256(path.read_bytes()).hexdigest()[:10]}"
        pipeline_id = kfp.find_pipeline(name)
        if pipeline_id is None:
            pipeline_id = kfp.upload_pipeline(name, path)
            log(f"pipeline {name}: uploaded (id {pipeline_id})")
        elif kfp.has_version(pipeline_id, version):
            log(f"pipeline {name}: version {version} already uploaded")
        else:
            version_id = kfp.upload_version(pipeline_id, version, path)
            log(f"pipeline {name}: uploaded version {version} (id {version_id})")


def main() -> int:
    deadline = time.monotonic() + float(env("SETUP_TIMEOUT", "300") or 300)
    ensure_buckets(deadline)
    ensure_scoped_user(deadline)
    upload_pipelines(deadline)
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
