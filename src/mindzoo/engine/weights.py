"""Weights from elsewhere: ``mindzoo train --init-from`` and ``mindzoo checkpoints import``.

A source is a mindzoo checkpoint (folder, published ``s3://`` prefix or a run's
prefix, whose ``model`` is taken), a registered version (``models:/<name>/<version>``:
the checkpoint its export was made from), a torch-engine checkpoint
(``model.safetensors`` with MindSpore names) or a plain MindSpore ``.ckpt`` in mindzoo
or ModelZoo names. :func:`fit` matches it to a network: every parameter must load,
except — when the class count differs — the classifier head, which is left freshly
initialised and named; anything else is one error naming the source and the first
mismatching parameter (no silent partial load).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mindzoo.engine import checkpoint as ckpt
from mindzoo.engine import modelzoo
from mindzoo.errors import MindzooError
from mindzoo.storage import S3Uri

__all__ = ["Fitted", "WeightSource", "describe", "fetch", "fit", "head_names", "read_arrays", "sha256_file", "summarise"]


@dataclass
class WeightSource:
    uri: str  # as the user gave it
    path: Path  # the local weights file
    sha256: str  # of the weights file's bytes
    arrays: dict[str, np.ndarray]
    identity: dict[str, Any] = field(default_factory=dict)  # model.json, when the source has one
    resolved: str = ""  # the checkpoint a models:/ URI or a run prefix stands for

    def record(self) -> dict[str, str]:
        return {"uri": self.uri, "sha256": self.sha256, **({"resolved": self.resolved} if self.resolved else {})}


@dataclass
class Fitted:
    arrays: dict[str, np.ndarray]  # what to load, by mindzoo (MindSpore) name
    reinitialised: list[str]  # head parameters left as built (class count differs)
    ignored: list[str]  # optimizer/training-state entries of the source
    names: str  # "mindzoo" or "modelzoo": how the source named its parameters


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_arrays(path: Path, where: str) -> dict[str, np.ndarray]:
    """Every tensor of a ``.ckpt`` (MindSpore) or ``.safetensors`` file as numpy, by name."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.numpy import load_file

            arrays = dict(load_file(str(path)))
        else:
            import mindspore as ms

            arrays = {name: param.asnumpy() for name, param in ms.load_checkpoint(str(path)).items()}
    except Exception as err:  # noqa: BLE001 - truncated or foreign files fail in many ways inside the readers
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0].replace(str(path), where)[:200]
        raise MindzooError(f"{where} is not a readable checkpoint ({reason})") from None
    if not arrays:
        raise MindzooError(f"{where} is not a readable checkpoint (no tensors in it)")
    return arrays


def _registered_checkpoint(uri: str, storage: Any, tracking_uri: str | None) -> str:
    """The checkpoint a registered version was exported from (its export's manifest records it)."""
    from mindzoo.export.registry import export_uri

    prefix = S3Uri.parse(export_uri(uri, tracking_uri))
    manifest = storage.read_manifest(prefix)
    source = (manifest.meta if manifest is not None else {}).get("checkpoint", "")
    if not source:
        raise MindzooError(f"{uri}: its export at {prefix} records no checkpoint")
    return str(source)


def fetch(uri: str, storage: Any, work: Path, tracking_uri: str | None = None) -> WeightSource:
    """Fetch and read a weight source (see the module docstring)."""
    resolved = ""
    if uri.startswith("models:/"):
        resolved = _registered_checkpoint(uri, storage, tracking_uri)
    elif uri.startswith("s3://") and storage.read_manifest(S3Uri.parse(uri)) is None \
            and storage.exists(S3Uri.parse(uri).join("run.json")):
        resolved = str(S3Uri.parse(uri).join("model"))  # a training run: its final weights
    target = resolved or uri
    work.mkdir(parents=True, exist_ok=True)
    folder = ckpt.local_checkpoint(target, storage, work)
    path = ckpt.weights_file(folder)
    return WeightSource(uri, path, sha256_file(path), read_arrays(path, uri), ckpt.read_json(folder / ckpt.IDENTITY),
                        resolved)


def head_names(shapes: dict[str, tuple[int, ...]], other: dict[str, tuple[int, ...]]) -> set[str]:
    """The parameters whose shape follows the class count: those that differ between two builds of one
    model with different class counts (derived from the network, no per-model list)."""
    return {n for n, s in shapes.items() if other.get(n) != s}


def _names_of(weights: dict[str, np.ndarray], model: str, shapes: dict[str, tuple[int, ...]], where: str
              ) -> tuple[dict[str, np.ndarray], str]:
    """The weights under mindzoo names: as they are, or translated from ModelZoo names."""
    ours = sum(1 for n in weights if n in shapes)
    if ours * 2 >= len(weights) or model not in modelzoo.FAMILIES:
        return weights, "mindzoo"
    translated, _ = modelzoo.from_modelzoo(weights, model, list(shapes), where)
    return translated, "modelzoo"


def fit(source: dict[str, np.ndarray], *, model: str, shapes: dict[str, tuple[int, ...]], heads: set[str],
        num_classes: int, where: str, strict: bool = False) -> Fitted:
    """Match source weights to a network (``shapes``: MindSpore name -> shape); see the module docstring.

    With ``strict`` a class-count difference is an error too."""
    weights, ignored = modelzoo.split_optimizer(source)
    weights, naming = _names_of(weights, model, shapes, where)
    unknown = [n for n in weights if n not in shapes]
    if unknown:
        raise ckpt.CheckpointMismatch(f"{where} does not fit {model}: unexpected parameter {unknown[0]!r} "
                                      f"({len(unknown)} in all; a checkpoint of another model?)")
    missing = [n for n in shapes if n not in weights]
    if missing:
        raise ckpt.CheckpointMismatch(f"{where} does not fit {model}: no parameter {missing[0]!r} "
                                      f"({len(missing)} missing)")
    reinit = []
    for name, want in shapes.items():
        got = tuple(weights[name].shape)
        if got == want:
            continue
        if name in heads and got[1:] == want[1:]:
            if strict:
                raise ckpt.CheckpointMismatch(f"{where} has {got[0]} classes ({name} is {got}), the run trains "
                                              f"{num_classes} (--strict)")
            reinit.append(name)
            continue
        raise ckpt.CheckpointMismatch(f"{where} does not fit {model}: {name} has shape {got}, expected {want}")
    return Fitted({n: weights[n] for n in shapes if n not in reinit}, reinit, ignored, naming)


def describe(fitted: Fitted, source: WeightSource) -> str:
    """One log line about what was loaded."""
    parts = [f"initialised from {source.uri} (sha256 {source.sha256[:12]}, {fitted.names} names): "
             f"{len(fitted.arrays)} parameters loaded"]
    if fitted.reinitialised:
        parts.append(f"re-initialised for the new class count: {', '.join(fitted.reinitialised)}")
    if fitted.ignored:
        parts.append(f"ignored {len(fitted.ignored)} optimizer entries ({summarise(fitted.ignored)})")
    return "; ".join(parts)


def summarise(names: list[str]) -> str:
    groups: dict[str, int] = {}
    for n in names:
        key = n.split(".", 1)[0] + (".*" if "." in n else "")
        groups[key] = groups.get(key, 0) + 1
    return ", ".join(f"{k} x{v}" if v > 1 else k for k, v in groups.items())


def to_json(fitted: Fitted, source: WeightSource) -> str:
    return json.dumps({**source.record(), "names": fitted.names, "reinitialised": fitted.reinitialised})
