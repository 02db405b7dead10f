"""The content hash that names a converted dataset.

It is the sha256 of the source listing plus every setting that changes the
bytes written. The listing is the quick check rsync and make use, because
reading ImageNet's 140 GB to decide "already converted" would defeat the cache:

- local files: (relative path, size, mtime in ns) — a re-extracted copy gets a
  new hash and is converted again, which is safe;
- objects in MinIO: (relative key, size, ETag) — content-derived;
- a published mindzoo folder: (relative path, size, sha256) from its manifest.

Worker counts, paths of local work folders and the failure threshold do not
change the output and stay out of the hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mindzoo.data import SCHEMA_VERSION

HASH_CHARS = 16  # of the hex digest used in the prefix name (64 bits)


def listing_digest(entries: Iterable[tuple[str, int, Any]]) -> str:
    """sha256 over sorted (relative path, size, version) triples."""
    digest = hashlib.sha256()
    for rel, size, version in sorted(entries):
        digest.update(f"{rel}\0{size}\0{version}\n".encode())
    return digest.hexdigest()


def file_digest(path: Path | None) -> str:
    if path is None:
        return ""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def settings(*, fmt: str, shard_size: int, num_shards: int, verify: str, store_size: int, store_quality: int,
             seed: int, label_file_sha256: str, max_pixels: int, labels: str) -> dict[str, Any]:
    """The conversion settings that change the output (recorded in dataset.json too).

    ``max_pixels`` decides which images are quarantined; ``labels`` is CIFAR-100's label kind ("" otherwise).
    """
    return {
        "schema": SCHEMA_VERSION, "format": fmt, "shard_size": shard_size, "num_shards": num_shards,
        "verify": verify, "store_size": store_size, "store_quality": store_quality if store_size else 0,
        "seed": seed, "label_file_sha256": label_file_sha256, "max_pixels": max_pixels, "labels": labels,
    }


def content_hash(listing: str, conversion: dict[str, Any]) -> str:
    body = json.dumps({"listing": listing, "settings": conversion}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()
