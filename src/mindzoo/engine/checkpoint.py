"""Checkpoints in the object store: layout, atomic publish, resume lookup, identity checks.

A run owns ``<output>/<run id>/``::

    run.json                        what the run is (model, recipe, dataset, MLflow run id)
    checkpoints/<prefix>-<E>_<S>/   periodic checkpoints (the recipe's ``keep`` newest are kept)
    best/                           the best checkpoint by the recipe's rule
    model/                          the final weights: the step's Model output

Every checkpoint folder is published with :meth:`mindzoo.storage.Storage.publish`
(files first, ``MANIFEST.json`` last), so a reader sees a whole checkpoint or
none; a process killed mid-upload leaves an unreferenced version folder that the
next publish removes. A folder holds ``model.ckpt`` (network parameters, with
BatchNorm statistics), ``optimizer.ckpt`` (moments and the step counter, i.e. the
LR position; resume checkpoints only) — the torch engine writes the same as
``model.safetensors`` / ``optimizer.safetensors`` under MindSpore names — ``state.json`` (epoch, step, best metrics,
loss-scale and RNG state, metric history) and ``model.json`` (the identity that
lets a reader refuse a checkpoint of another model). The manifest's ``meta``
repeats ``state`` and ``identity`` so lookups need no download.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from mindzoo.errors import DataError, MindzooError, StorageError, first_line
from mindzoo.storage import MANIFEST, S3Uri

__all__ = [
    "CHECKPOINT_FORMAT", "CheckpointMismatch", "CheckpointStore", "check_identity", "first_line", "local_checkpoint",
    "read_json", "weights_file", "write_folder",
]

CHECKPOINT_FORMAT = "mindzoo.checkpoint/1"
WEIGHTS, OPTIMIZER, STATE, IDENTITY = "model.ckpt", "optimizer.ckpt", "state.json", "model.json"
# The torch engine's weights and optimizer state: safetensors with MindSpore names (MindSpore loads them).
WEIGHTS_SAFETENSORS, OPTIMIZER_SAFETENSORS = "model.safetensors", "optimizer.safetensors"


def weights_file(folder: Path) -> Path:
    """The weights of a checkpoint folder: ``model.ckpt`` (MindSpore engine) or ``model.safetensors`` (torch)."""
    ckpt = folder / WEIGHTS
    return ckpt if ckpt.is_file() or not (folder / WEIGHTS_SAFETENSORS).is_file() else folder / WEIGHTS_SAFETENSORS


class CheckpointMismatch(MindzooError):
    """A checkpoint belongs to another model (or class count) than the one asked for."""


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object file written next to a checkpoint or an export; {} when absent, one-line error when broken."""
    if not path.is_file():
        return {}
    try:
        body = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise DataError(f"{path} is not valid JSON ({err})") from None
    if not isinstance(body, dict):
        raise DataError(f"{path} holds a JSON {type(body).__name__}, not an object")
    return body


def write_folder(folder: Path, identity: dict[str, Any], state: dict[str, Any]) -> None:
    """Write ``model.json`` and ``state.json`` next to the framework's weight files."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / IDENTITY).write_text(json.dumps({"format": CHECKPOINT_FORMAT, **identity}, indent=2, sort_keys=True))
    (folder / STATE).write_text(json.dumps(state, indent=2, sort_keys=True))


def check_identity(identity: dict[str, Any], *, model: str | None, num_classes: int | None, where: str) -> None:
    """Refuse a checkpoint recorded for another model or class count."""
    if not identity:
        return
    if model and identity.get("model") not in (None, model):
        raise CheckpointMismatch(f"{where} is a checkpoint of model {identity['model']!r}, not {model!r}")
    if num_classes and identity.get("num_classes") not in (None, num_classes):
        raise CheckpointMismatch(f"{where} has {identity['num_classes']} classes, not {num_classes}")


class CheckpointStore:
    """The checkpoints of one run under ``<output>/<run id>`` (only rank 0 writes)."""

    def __init__(self, storage: Any, run_prefix: S3Uri) -> None:
        self.storage = storage
        self.prefix = run_prefix
        self.checkpoints = run_prefix.join("checkpoints")

    def uri(self, name: str) -> S3Uri:
        return self.checkpoints.join(name) if name not in ("best", "model") else self.prefix.join(name)

    def publish(self, folder: Path, name: str, meta: dict[str, Any], keep: int | None = None) -> S3Uri:
        """Publish ``folder`` as checkpoint ``name`` (manifest last); prune to the ``keep`` newest."""
        target = self.uri(name)
        self.storage.publish(folder, target, meta=meta)
        if keep is not None:
            self.prune(keep, protect=name)
        return target

    def published(self, unreadable: list[str] | None = None) -> list[tuple[int, str, dict[str, Any]]]:
        """(global step, name, manifest meta) of every periodic checkpoint, oldest first.

        A checkpoint whose manifest cannot be read is left out (and its name and reason added to
        ``unreadable``), so one damaged checkpoint does not hide the older good ones.
        """
        base = self.checkpoints.key + "/"
        names = {k[len(base):].split("/", 1)[0] for k in self.storage.list(self.checkpoints)
                 if k.endswith("/" + MANIFEST) and k[len(base):].count("/") == 1}
        found = []
        for name in names:
            try:
                manifest = self.storage.read_manifest(self.checkpoints.join(name))
                step = int(manifest.meta.get("state", {}).get("step", -1)) if manifest is not None else None
            except (StorageError, ValueError, TypeError, AttributeError) as err:
                if unreadable is not None:
                    unreadable.append(f"{self.checkpoints.join(name)} ({first_line(err)})")
                continue
            if step is not None:
                found.append((step, name, manifest.meta))
        return sorted(found)

    def latest(self) -> tuple[str, dict[str, Any]] | None:
        """The newest periodic checkpoint (the resume point), or None."""
        found = self.published()
        return (found[-1][1], found[-1][2]) if found else None

    def newest_first(self, unreadable: list[str]) -> list[tuple[str, dict[str, Any]]]:
        """Resume candidates, newest first (unreadable manifests reported in ``unreadable``)."""
        return [(name, meta) for _, name, meta in reversed(self.published(unreadable))]

    def fetch(self, name: str, local: Path) -> Path:
        self.storage.fetch(self.uri(name), local)
        return local

    def read_meta(self, name: str) -> dict[str, Any] | None:
        manifest = self.storage.read_manifest(self.uri(name))
        return None if manifest is None else manifest.meta

    def prune(self, keep: int, protect: str) -> None:
        found = [name for _, name, _ in self.published() if name != protect]
        for name in found[: max(0, len(found) - (keep - 1))]:
            for key in self.storage.list(self.checkpoints.join(name)):
                self.storage.delete(S3Uri(self.prefix.bucket, key))


def local_checkpoint(source: str, storage: Any, work: Path) -> Path:
    """A local folder holding ``model.ckpt`` or ``model.safetensors`` for ``source``: an s3:// published prefix
    (fetched into ``work``), a local checkpoint folder, or a bare ``.ckpt``/``.safetensors`` file (no identity)."""
    if source.startswith("s3://"):
        uri = S3Uri.parse(source)
        if storage.read_manifest(uri) is None:
            raise MindzooError(f"no checkpoint published at {source} (no {MANIFEST})")
        local = work / "checkpoint"
        storage.fetch(uri, local)
    else:
        path = Path(source).expanduser()
        if path.is_file():
            local = Path(tempfile.mkdtemp(dir=work, prefix="ckpt-"))
            shutil.copyfile(path, local / (WEIGHTS_SAFETENSORS if path.suffix == ".safetensors" else WEIGHTS))
        elif path.is_dir():
            local = path
        else:
            raise MindzooError(f"no such checkpoint: {source}")
    if not weights_file(local).is_file():
        raise MindzooError(f"{source} holds no {WEIGHTS} or {WEIGHTS_SAFETENSORS}")
    return local
