"""The preprocess step's library side: open a source, name its output, stage the conversion.

:func:`open_source` knows the content hash of a source before anything heavy
happens: a local folder is scanned (and validated) right away; an ``s3://``
source is only listed, and downloaded when :meth:`Source.plan` is called —
after the cache check, so a cache hit never moves raw data.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mindzoo.config import PreprocessConfig
from mindzoo.data import hashing, remote, sources
from mindzoo.data.convert import ConvertSettings
from mindzoo.errors import DataError
from mindzoo.storage import S3Uri


@dataclass
class Source:
    """A raw dataset to convert; ``plan()`` materialises it (downloads an s3:// source)."""

    uri: str
    name: str
    format: str
    listing: str  # digest of the listing, see mindzoo.data.hashing
    label_file: Path | None
    scanned: sources.Plan | None = None
    fetch: Callable[[], Path] | None = field(default=None, repr=False)
    options: dict[str, Any] = field(default_factory=dict)  # sources.scan's keyword options

    def plan(self) -> sources.Plan:
        if self.scanned is None and self.fetch is not None:
            self.scanned = sources.scan(self.fetch(), self.format, self.label_file, **self.options)
        if self.scanned is None:
            raise DataError(f"source {self.uri} was neither scanned nor fetchable")
        return self.scanned


def cache_root(cfg: PreprocessConfig) -> Path:
    from mindzoo.paths import cache_dir

    return Path(cfg.cache_dir).expanduser() if cfg.cache_dir else cache_dir()


def open_source(cfg: PreprocessConfig, storage: Callable[[], Any]) -> Source:
    """List (and, for a local folder, validate) ``cfg.source``."""
    label_file = _label_file(cfg, storage)
    options = {"train_only": cfg.train_only, "cifar100_labels": cfg.cifar100_labels}
    if not cfg.source.startswith("s3://"):
        root = Path(cfg.source).expanduser().absolute()
        plan = sources.scan(root, cfg.format, label_file, **options)
        return Source(str(root), _name(cfg, root.name), plan.format, hashing.listing_digest(plan.listing),
                      plan.label_file, plan, options=options)
    store, uri = storage(), S3Uri.parse(cfg.source)
    objects = remote.list_source(store, uri)
    fmt = cfg.format if cfg.format != "auto" else sources.detect_format(o.rel for o in objects)
    if fmt is None:
        raise DataError(f"no dataset found in {uri}: {sources.EXPECTED}")
    cache = cache_root(cfg) / "sources"
    name = _name(cfg, uri.key.rsplit("/", 1)[-1] or uri.bucket)
    return Source(cfg.source, name, fmt, remote.digest(objects), label_file,
                  fetch=lambda: remote.download(store, uri, objects, cache), options=options)


def _label_file(cfg: PreprocessConfig, storage: Callable[[], Any]) -> Path | None:
    if not cfg.label_file:
        return None
    if cfg.label_file.startswith("s3://"):
        folder = cache_root(cfg) / "labels" / hashlib.sha256(cfg.label_file.encode()).hexdigest()[:16]
        return remote.fetch_file(storage(), S3Uri.parse(cfg.label_file), folder)
    path = Path(cfg.label_file).expanduser().absolute()
    if not path.is_file():
        raise DataError(f"label file {cfg.label_file} does not exist")
    return path


def _name(cfg: PreprocessConfig, fallback: str) -> str:
    return cfg.name or _slug(fallback) or "dataset"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:60]


def convert_settings(cfg: PreprocessConfig) -> ConvertSettings:
    return ConvertSettings(verify=cfg.verify, store_size=cfg.store_size, store_quality=cfg.store_quality,
                           shard_size=cfg.shard_size, num_shards=cfg.num_shards, seed=cfg.seed,
                           max_pixels=cfg.max_pixels)


def settings_of(cfg: PreprocessConfig, source: Source) -> dict[str, Any]:
    """The hashed settings (also recorded in dataset.json)."""
    return hashing.settings(fmt=source.format, shard_size=cfg.shard_size, num_shards=cfg.num_shards,
                            verify=cfg.verify, store_size=cfg.store_size, store_quality=cfg.store_quality,
                            seed=cfg.seed, label_file_sha256=hashing.file_digest(source.label_file),
                            max_pixels=cfg.max_pixels,
                            labels=cfg.cifar100_labels if source.format == "cifar100" else "")


def output_prefix(cfg: PreprocessConfig, key: str) -> S3Uri:
    return S3Uri.parse(cfg.output).join(key[:hashing.HASH_CHARS])


@contextmanager
def staging(cfg: PreprocessConfig, key: str) -> Iterator[Path]:
    """A private local folder for one conversion, removed afterwards.

    Folders left by killed runs of the same dataset (their process is gone)
    are removed first, so a crash never fills the disk twice.
    """
    work = cache_root(cfg) / "work"
    work.mkdir(parents=True, exist_ok=True)
    stem = key[:hashing.HASH_CHARS]
    for old in work.glob(f"{stem}-*"):
        pid = old.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not remote.alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    folder = work / f"{stem}-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def convert_local(cfg: PreprocessConfig, out: Path, progress: bool = False) -> dict[str, Any]:
    """Convert a local source into ``out`` (shards + dataset.json) without publishing; returns dataset.json.

    For benchmarks, tests and air-gapped machines; ``create_dataset`` reads ``out`` directly.
    """
    from datetime import datetime, timezone

    from mindzoo.data import convert, manifest

    def no_storage() -> Any:
        raise DataError("convert_local needs a local source and label file, not s3://")

    source = open_source(cfg, no_storage)
    key = hashing.content_hash(source.listing, settings_of(cfg, source))
    plan = source.plan()
    out.mkdir(parents=True, exist_ok=True)
    conversion = convert.convert(plan, out, convert_settings(cfg), cfg.workers, progress=progress)
    info = manifest.build(name=source.name, key=key, source=source.uri, plan=plan, conversion=conversion,
                          settings=settings_of(cfg, source),
                          created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    manifest.write(info, out)
    return info
