"""Object storage on the ``minio`` SDK: checksummed transfers and atomic publishing.

Publishing a folder is log-structured, because S3 has no rename: the files go
under a fresh version prefix (``<prefix>/v-<id>/...``) that nobody reads, and a
``MANIFEST.json`` naming them (with sha256 and size) is written last. Readers go
through the manifest, so they see either the previous complete version or the
new complete one — never half a dataset — and a killed upload leaves only an
unreferenced version prefix that the next publish removes. No data is copied
twice, which matters at ImageNet scale.

Every call retries transient failures (connection refused, resets, 5xx) with
exponential backoff for up to ``retry_seconds``; authentication and missing
buckets fail at once with a one-line :class:`StorageError`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from mindzoo import safepath
from mindzoo.config import StorageConfig
from mindzoo.errors import StorageError
from mindzoo.lease import UploadLease

T = TypeVar("T")
MANIFEST = "MANIFEST.json"
MANIFEST_FORMAT = "mindzoo.manifest/1"
_AUTH_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken"}
_TRANSIENT_CODES = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "XMinioServerNotInitialized"}


@dataclass(frozen=True)
class S3Uri:
    bucket: str
    key: str = ""

    @classmethod
    def parse(cls, uri: str) -> S3Uri:
        if not uri.startswith("s3://"):
            raise StorageError(f"not an s3:// URI: {uri!r}")
        bucket, _, key = uri[len("s3://"):].partition("/")
        if not bucket:
            raise StorageError(f"no bucket in {uri!r}")
        return cls(bucket, key.strip("/"))

    def join(self, *parts: str) -> S3Uri:
        key = "/".join(p.strip("/") for p in (self.key, *parts) if p.strip("/"))
        return S3Uri(self.bucket, key)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}" if self.key else f"s3://{self.bucket}"


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    modified: float = 0.0  # last modification, seconds since the epoch


@dataclass(frozen=True)
class Manifest:
    """What a publish wrote: files (relative path → key, size, sha256) and metadata."""

    uri: str
    version: str
    files: dict[str, dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)
    created: str = ""

    def to_json(self) -> str:
        body = {"format": MANIFEST_FORMAT, "uri": self.uri, "version": self.version,
                "created": self.created, "meta": self.meta, "files": self.files}
        return json.dumps(body, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str = MANIFEST) -> Manifest:
        """Parse and validate: every path, key, size, hash and the version are checked (see safepath)."""
        try:
            data = json.loads(text)
        except ValueError as err:
            raise StorageError(f"{where}: not valid JSON ({err})") from None
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            raise StorageError(f"{where}: unknown manifest format "
                               f"{data.get('format') if isinstance(data, dict) else data!r}")
        files = data.get("files")
        if not isinstance(files, dict):
            raise StorageError(f"{where}: 'files' is not a mapping")
        for rel, entry in files.items():
            _check_entry(rel, entry, where)
        meta = data.get("meta", {})
        if not isinstance(meta, dict):
            raise StorageError(f"{where}: 'meta' is not a mapping")
        return cls(str(data.get("uri", "")), safepath.version(data.get("version"), where), files, meta,
                   str(data.get("created", "")))


def _check_entry(rel: object, entry: object, where: str) -> None:
    name = f"{where}: file {rel!r}"
    safepath.relpath(rel, where)
    if not isinstance(entry, dict):
        raise StorageError(f"{name}: entry is not a mapping")
    safepath.relpath(entry.get("key"), f"{name}: object key")
    size = entry.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise StorageError(f"{name}: size {size!r} is not a byte count")
    safepath.hexdigest(entry.get("sha256"), f"{name}: sha256", 64)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _walk(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield path


class Storage:
    """A bucket-agnostic client for one S3 endpoint."""

    def __init__(self, cfg: StorageConfig) -> None:
        import urllib3
        from minio import Minio

        self.cfg = cfg
        # Retries are ours (with a time budget); urllib3 should fail fast.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5, read=120), retries=urllib3.Retry(total=0, redirect=0), maxsize=8
        )
        self.client = Minio(cfg.endpoint, access_key=cfg.access_key, secret_key=cfg.secret_key,
                            secure=cfg.secure, region=cfg.region, http_client=http)

    @classmethod
    def connect(cls, cfg: StorageConfig | None = None) -> Storage:
        from mindzoo.endpoints import resolve_storage

        return cls(resolve_storage(cfg))

    # -- retry policy -------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], T]) -> T:
        from minio.error import InvalidResponseError, S3Error, ServerError
        from urllib3.exceptions import HTTPError

        delay, deadline = 0.5, time.monotonic() + self.cfg.retry_seconds
        while True:
            try:
                return fn()
            except S3Error as err:
                if err.code in _AUTH_CODES:
                    raise StorageError(
                        f"object store at {self.cfg.endpoint} refused {what}: {err.code} (wrong credentials?)"
                    ) from None
                if err.code == "NoSuchBucket":
                    raise StorageError(f"bucket {err.bucket_name!r} does not exist at {self.cfg.endpoint}") from None
                if err.code not in _TRANSIENT_CODES:
                    raise StorageError(f"{what} failed: {err.code}: {err.message}") from None
                reason = err.code
            except (HTTPError, ServerError, ConnectionError) as err:
                reason = str(getattr(err, "reason", None) or err).splitlines()[0][:200]
            except InvalidResponseError as err:
                raise StorageError(f"{self.cfg.endpoint} is not an S3 endpoint ({what}): {str(err)[:120]}") from None
            if time.monotonic() + delay > deadline:
                raise StorageError(f"cannot reach object store at {self.cfg.endpoint} ({what}): {reason}")
            time.sleep(delay)
            delay = min(delay * 2, 8.0)

    # -- single objects -----------------------------------------------------
    def exists(self, uri: S3Uri) -> bool:
        from minio.error import S3Error

        def stat() -> bool:
            try:
                self.client.stat_object(uri.bucket, uri.key)
                return True
            except S3Error as err:
                if err.code in ("NoSuchKey", "NoSuchObject"):
                    return False
                raise

        return self._call(f"stat {uri}", stat)

    def bucket_exists(self, bucket: str) -> bool:
        return self._call(f"check bucket {bucket}", lambda: self.client.bucket_exists(bucket))

    def ensure_bucket(self, bucket: str) -> None:
        if not self.bucket_exists(bucket):
            self._call(f"create bucket {bucket}", lambda: self.client.make_bucket(bucket))

    def upload_file(self, path: Path, uri: S3Uri) -> str:
        """Upload one file; return its sha256 (also stored as object metadata)."""
        digest = sha256_file(path)
        self._call(f"upload {uri}", lambda: self.client.fput_object(
            uri.bucket, uri.key, str(path), metadata={"x-amz-meta-sha256": digest}))
        return digest

    def put_bytes(self, data: bytes, uri: S3Uri, content_type: str = "application/octet-stream") -> None:
        self._call(f"upload {uri}", lambda: self.client.put_object(
            uri.bucket, uri.key, io.BytesIO(data), len(data), content_type=content_type))

    def get_bytes(self, uri: S3Uri) -> bytes:
        def get() -> bytes:
            resp = self.client.get_object(uri.bucket, uri.key)
            try:
                return resp.read()
            finally:
                resp.close()
                resp.release_conn()

        return self._call(f"download {uri}", get)

    def download_file(self, uri: S3Uri, path: Path, sha256: str | None = None) -> str:
        """Download to ``path`` atomically (temp file + rename); verify sha256 if given."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        os.close(fd)
        try:
            self._call(f"download {uri}", lambda: self.client.fget_object(uri.bucket, uri.key, tmp))
            digest = sha256_file(Path(tmp))
            if sha256 and digest != sha256:
                raise StorageError(f"checksum mismatch for {uri}: expected {sha256[:12]}…, got {digest[:12]}…")
            os.replace(tmp, path)
            return digest
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def list(self, prefix: S3Uri, recursive: bool = True) -> list[str]:
        return [o.key for o in self.list_objects(prefix, recursive)]

    def list_objects(self, prefix: S3Uri, recursive: bool = True) -> list[ObjectInfo]:
        """Objects under ``prefix`` with size and ETag (folders left out)."""
        key = prefix.key + "/" if prefix.key else ""
        return self._call(f"list {prefix}", lambda: [
            ObjectInfo(o.object_name, int(o.size or 0), (o.etag or "").strip('"'),
                       o.last_modified.timestamp() if o.last_modified else 0.0)
            for o in self.client.list_objects(prefix.bucket, prefix=key, recursive=recursive) if not o.is_dir])

    def delete(self, uri: S3Uri) -> None:
        self._call(f"delete {uri}", lambda: self.client.remove_object(uri.bucket, uri.key))

    # -- folders and publishing ----------------------------------------------
    def upload_dir(self, local: Path, prefix: S3Uri, workers: int = 4, progress: bool = False) -> dict[str, dict]:
        """Upload every file under ``local``; return {relative path: {key, size, sha256}}."""
        files = list(_walk(local))
        if not files:
            raise StorageError(f"nothing to upload: {local} has no files")

        def one(path: Path) -> tuple[str, dict]:
            rel = path.relative_to(local).as_posix()
            target = prefix.join(rel)
            return rel, {"key": target.key, "size": path.stat().st_size, "sha256": self.upload_file(path, target)}

        with _progress(progress, sum(p.stat().st_size for p in files), f"upload {prefix}") as bar, \
                ThreadPoolExecutor(max_workers=workers) as pool:
            out = {}
            for rel, entry in pool.map(one, files):
                out[rel] = entry
                bar.update(entry["size"])
        return out

    def publish(self, local: Path, prefix: S3Uri, meta: dict[str, Any] | None = None,
                progress: bool = False) -> Manifest:
        """Upload ``local`` as a new version of ``prefix``; the manifest goes last.

        The upload holds a lease (see :mod:`mindzoo.lease`) until its cleanup is done, so a
        concurrent publish of the same prefix never collects it.
        """
        # Microseconds: versions sort by start time, which is what "older" means to gc.
        version = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ") + "-" + uuid.uuid4().hex[:8]
        with UploadLease(self, prefix, version):
            files = self.upload_dir(local, prefix.join(f"v-{version}"), progress=progress)
            manifest = Manifest(str(prefix), version, files, dict(meta or {}),
                                datetime.now(timezone.utc).isoformat(timespec="seconds"))
            previous = self.read_manifest(prefix)  # read last: another writer may have published meanwhile
            self.put_bytes(manifest.to_json().encode(), prefix.join(MANIFEST), "application/json")
            # The replaced version stays one generation, so a reader already fetching it finishes;
            # older unreferenced folders (killed uploads, older generations) go.
            self.gc(prefix, keep=manifest, also_keep=previous.version if previous else None)
        return manifest

    def read_manifest(self, prefix: S3Uri) -> Manifest | None:
        """The published manifest under ``prefix`` (validated), or None if nothing is published."""
        uri = prefix.join(MANIFEST)
        if not self.exists(uri):
            return None
        return Manifest.from_json(self.get_bytes(uri).decode(errors="replace"), str(uri))

    def fetch(self, prefix: S3Uri, local: Path, progress: bool = False) -> Manifest:
        """Download a published folder into ``local`` (replaced atomically), checksums verified."""
        manifest = self.read_manifest(prefix)
        if manifest is None:
            raise StorageError(f"nothing published at {prefix} (no {MANIFEST})")
        where = str(prefix.join(MANIFEST))
        staging = Path(tempfile.mkdtemp(dir=local.parent if local.parent.exists() else None,
                                        prefix=f".{local.name}."))
        try:
            targets = {rel: safepath.inside(staging, rel, where) for rel in manifest.files}  # all, before any write
            total = sum(int(e["size"]) for e in manifest.files.values())
            with _progress(progress, total, f"download {prefix}") as bar:
                for rel, entry in sorted(manifest.files.items()):
                    self.download_file(S3Uri(prefix.bucket, entry["key"]), targets[rel], entry["sha256"])
                    bar.update(int(entry["size"]))
            (staging / MANIFEST).write_text(manifest.to_json())
            staging.chmod(0o755)  # mkdtemp makes it private; containers may read it as another user
            if local.exists():
                shutil.rmtree(local)
            local.parent.mkdir(parents=True, exist_ok=True)
            staging.rename(local)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return manifest

    def gc(self, prefix: S3Uri, keep: Manifest | None = None, also_keep: str | None = None) -> int:
        """Delete version folders under ``prefix`` older than ``keep``'s that nothing uses.

        Kept: ``keep``, ``also_keep``, whatever the manifest names now, every version newer
        than ``keep`` and every version whose writer holds a live lease. Leases are listed
        before the manifest is read: a writer drops its lease only after its manifest is
        written, so its version is seen one way or the other.
        """
        base = f"{prefix.key}/" if prefix.key else ""
        leases = UploadLease.scan(self, prefix)
        current = self.read_manifest(prefix)
        keep = keep or current
        if keep is None:
            return 0
        used = {keep.version, also_keep, current.version if current else None}
        used |= {v for v, live in leases.items() if live}
        stale = []
        for key in self.list(prefix):
            rest = key[len(base):]
            # Only this prefix's own version folders: a nested published prefix keeps its own.
            if rest.startswith("v-") and "/" in rest:
                version = rest[2:].split("/", 1)[0]
                if version not in used and version < keep.version:
                    stale.append(key)
        stale += [UploadLease.key(prefix, v) for v, live in leases.items() if not live and v < keep.version]
        for key in stale:
            self.delete(S3Uri(prefix.bucket, key))
        return len(stale)


class _NullBar:
    def update(self, n: int) -> None:
        pass

    def __enter__(self) -> _NullBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _progress(enabled: bool, total: int, desc: str) -> Any:
    if not enabled:
        return _NullBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc=desc, leave=False)
