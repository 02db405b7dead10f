"""Raw datasets that live in MinIO: list them (for the content hash) and download them.

An ``s3://`` source is either a folder published by mindzoo (``mindzoo storage
cp`` writes a ``MANIFEST.json`` with sha256 per file) or plain objects under a
prefix. Listing comes first and is cheap, so a cache hit never downloads the
raw data; the download goes to a local folder named by the listing digest and
appears there only when complete.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mindzoo import safepath
from mindzoo.data.hashing import HASH_CHARS, listing_digest
from mindzoo.errors import DataError
from mindzoo.lease import pid_alive
from mindzoo.storage import MANIFEST, S3Uri

_COMPLETE = ".complete"  # next to the folder (<digest>.complete), so the scanner never sees it


@dataclass(frozen=True)
class RemoteObject:
    rel: str  # path below the source prefix
    key: str
    size: int
    version: str  # sha256 from a mindzoo manifest, else the S3 ETag
    verified: bool  # version is a sha256 to check after download


def list_source(storage: Any, uri: S3Uri) -> list[RemoteObject]:
    """Every object of the dataset at ``uri``; a missing or empty prefix is a DataError."""
    manifest = storage.read_manifest(uri)  # validated by Manifest.from_json
    if manifest is not None:
        objects = [RemoteObject(rel, e["key"], int(e["size"]), e["sha256"], True) for rel, e in manifest.files.items()]
    else:
        base = f"{uri.key}/" if uri.key else ""
        objects = [RemoteObject(safepath.relpath(o.key[len(base):], f"object s3://{uri.bucket}/{o.key}"),
                                o.key, o.size, o.etag, False)
                   for o in storage.list_objects(uri) if o.key[len(base):] != MANIFEST]
    if not objects:
        raise DataError(f"source {uri} does not exist (no objects under that prefix)")
    return sorted(objects, key=lambda o: o.rel)


def digest(objects: list[RemoteObject]) -> str:
    return listing_digest((o.rel, o.size, o.version) for o in objects)


def download(storage: Any, uri: S3Uri, objects: list[RemoteObject], cache: Path, workers: int = 8) -> Path:
    """The objects as a local folder ``cache/<listing digest>`` (reused when complete)."""
    dest = cache / digest(objects)[:HASH_CHARS]
    done = cache / f"{dest.name}{_COMPLETE}"
    if done.exists() and dest.is_dir():
        return dest
    cache.mkdir(parents=True, exist_ok=True)
    for old in cache.glob(f".{dest.name}.*"):  # left by killed runs
        pid = old.name.rsplit(".", 1)[-1]
        if not (pid.isdigit() and alive(int(pid))):
            shutil.rmtree(old, ignore_errors=True)
    staging = cache / f".{dest.name}.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        targets = {o.rel: safepath.inside(staging, o.rel, f"object s3://{uri.bucket}/{o.key}") for o in objects}

        def one(obj: RemoteObject) -> None:
            storage.download_file(S3Uri(uri.bucket, obj.key), targets[obj.rel],
                                  obj.version if obj.verified else None)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(one, objects))
        # A concurrent run of the same source may have finished first (same listing, same
        # content): its folder is kept, as it may be converting from it right now.
        if not (done.exists() and dest.is_dir()):
            shutil.rmtree(dest, ignore_errors=True)  # a killed run's copy that never got its marker
            try:
                staging.rename(dest)
            except OSError:  # the other run renamed its copy in between
                if not dest.is_dir():
                    raise
            done.touch()  # a crash before this only costs a second download
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


alive = pid_alive  # to tell a killed run's leftovers from a live one's


def fetch_file(storage: Any, uri: S3Uri, folder: Path) -> Path:
    """One object (a label file) into ``folder``; a missing object is a DataError."""
    if not storage.exists(uri):
        raise DataError(f"{uri} does not exist")
    path = safepath.inside(folder, Path(uri.key).name, str(uri))
    storage.download_file(uri, path)
    return path
