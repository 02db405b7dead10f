"""A local copy of a converted dataset, keyed by its content hash.

Training and evaluation read shards from local disk. ``local_dataset`` turns
an ``s3://`` prefix into ``<cache>/datasets/<content hash>``: fetched once
(checksums verified, folder replaced atomically by ``Storage.fetch``) and
reused while the published version is the same. A file lock makes the ranks
of one machine share a single download.
"""

from __future__ import annotations

import fcntl
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mindzoo.data import manifest
from mindzoo.data.hashing import HASH_CHARS
from mindzoo.errors import DataError


def default_root() -> Path:
    from mindzoo.paths import cache_dir

    return cache_dir() / "datasets"


def local_dataset(source: str | Path, *, storage: Any = None, cache_dir: Path | None = None) -> Path:
    """A folder holding ``dataset.json`` and the shards of ``source`` (a local folder or an s3:// prefix)."""
    if not str(source).startswith("s3://"):
        folder = Path(source).expanduser()
        manifest.load(folder)  # a clear error if this is not a converted dataset
        return folder
    from mindzoo.storage import MANIFEST, S3Uri, Storage

    uri = S3Uri.parse(str(source))
    store = storage or Storage.connect()
    published = store.read_manifest(uri)
    if published is None:
        raise DataError(f"no converted dataset at {uri} (no {MANIFEST}); run `mindzoo preprocess` first")
    key = _cache_key(published, uri)
    root = cache_dir or default_root()
    root.mkdir(parents=True, exist_ok=True)
    local = root / key
    with _locked(root / f".{key}.lock"):
        if not _current(local, published):
            store.fetch(uri, local, progress=sys.stderr.isatty())
    return local


def _cache_key(published: Any, uri: Any) -> str:
    """The local folder name: the content hash from the manifest, checked (it is someone else's data)."""
    from mindzoo import safepath

    where = f"{uri}/MANIFEST.json: meta.content_hash"
    value = published.meta.get("content_hash")
    if value is None:  # a folder published by `storage cp`, not by preprocess: its version names it
        return safepath.version(published.version, where)
    return safepath.hexdigest(value, where, 64)[:HASH_CHARS]


def _current(local: Path, published: Any) -> bool:
    """True if ``local`` holds exactly the published version (sizes checked; fetch verified the hashes)."""
    from mindzoo.errors import StorageError
    from mindzoo.storage import MANIFEST, Manifest

    try:
        held = Manifest.from_json((local / MANIFEST).read_text())
    except (OSError, ValueError, StorageError):
        return False
    if held.version != published.version:
        return False
    return all((local / rel).is_file() and (local / rel).stat().st_size == int(entry["size"])
               for rel, entry in published.files.items())


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
