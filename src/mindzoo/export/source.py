"""The checkpointed network, rebuilt from what the train step recorded with it.

A train checkpoint folder holds ``model.ckpt`` and ``model.json`` (its identity:
model, classes, input size, data config, recipe, run and dataset hash; see
:mod:`mindzoo.engine.checkpoint`). A bare ``.ckpt`` may come with a sidecar
``<file>.json`` holding the same keys, or the flags name the model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mindzoo.archs import DataConfig, get_data_config, get_model_config
from mindzoo.engine import checkpoint as ckpt
from mindzoo.errors import ConfigError, MindzooError
from mindzoo.storage import S3Uri


@dataclass
class Checkpoint:
    folder: Path
    model: str
    num_classes: int
    input_size: int
    data_config: DataConfig
    identity: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)  # the training run's run.json, when found

    @property
    def model_kwargs(self) -> dict[str, Any]:
        kwargs = dict(self.identity.get("model_kwargs") or {})
        return {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}

    @property
    def classes(self) -> list[str]:
        return list(self.identity.get("classes") or [str(i) for i in range(self.num_classes)])

    def metrics(self) -> dict[str, float]:
        """The evaluation metrics recorded with the checkpoint (last evaluated epoch, then the best)."""
        history = [h for h in self.state.get("history", []) if any(k.startswith("eval/") for k in h)]
        out = {k.split("/", 1)[1]: float(v) for k, v in (history[-1] if history else {}).items()
               if k.startswith("eval/") and isinstance(v, (int, float))}
        for key, value in (self.state.get("best") or {}).items():
            if isinstance(value, (int, float)):
                out[f"best_{key}"] = float(value)
        return out


def run_prefix(source: str) -> S3Uri | None:
    """``s3://b/runs/<id>`` for a checkpoint under a training run (``model``, ``best``, ``checkpoints/x``)."""
    if not source.startswith("s3://"):
        return None
    uri = S3Uri.parse(source)
    parts = uri.key.split("/")
    if parts and parts[-1] in ("model", "best"):
        return S3Uri(uri.bucket, "/".join(parts[:-1]))
    if len(parts) >= 2 and parts[-2] == "checkpoints":
        return S3Uri(uri.bucket, "/".join(parts[:-2]))
    return None


def resolve(source: str, storage: Any, work: Path, *, model: str = "", num_classes: int = 0,
            input_size: int = 0) -> Checkpoint:
    """Fetch (if s3://) and describe a checkpoint; flags override or complete the recorded identity."""
    folder = ckpt.local_checkpoint(source, storage, work)
    identity = ckpt.read_json(folder / ckpt.IDENTITY)
    sidecar = Path(source).expanduser().with_suffix(".json") if not source.startswith("s3://") else None
    if not identity and sidecar is not None and sidecar.is_file():
        identity = ckpt.read_json(sidecar)
    ckpt.check_identity(identity, model=model or None, num_classes=num_classes or None, where=source)
    name = model or identity.get("model", "")
    if not name:
        raise ConfigError("export.model", f"{source} records no model; pass --model")
    config = get_model_config(name)
    classes = num_classes or int(identity.get("num_classes") or 0)
    if not classes:
        raise ConfigError("export.num_classes", f"{source} records no class count; pass --num-classes")
    data_cfg = get_data_config(identity.get("data_config") or config.data_config)
    size = input_size or int(identity.get("input_size") or data_cfg.input_size)
    if size != data_cfg.input_size:
        data_cfg = data_cfg.at_size(size)
    run = {}
    prefix = run_prefix(source)
    if prefix is not None and storage.exists(prefix.join("run.json")):
        run = json.loads(storage.get_bytes(prefix.join("run.json")))
    return Checkpoint(folder, name, classes, size, data_cfg, identity, ckpt.read_json(folder / ckpt.STATE), run)


def build_network(point: Checkpoint) -> Any:
    """The network in eval mode with the checkpoint's weights (every parameter must fit)."""
    import mindspore as ms

    from mindzoo.registry import create_model

    net = create_model(point.model, framework="mindspore", num_classes=point.num_classes,
                       input_size=point.input_size, **point.model_kwargs)
    path = ckpt.weights_file(point.folder)  # torch-engine checkpoints: safetensors with MindSpore names, no torch
    saved = ms.load_checkpoint(str(path), format="safetensors" if path.suffix == ".safetensors" else "ckpt")
    params = {p.name: tuple(p.shape) for p in net.get_parameters()}
    missing = sorted(set(params) - set(saved))
    if missing:
        raise ckpt.CheckpointMismatch(f"checkpoint does not fit {point.model}: no parameter {missing[0]!r} "
                                      f"({len(missing)} missing)")
    for pname, shape in params.items():
        if tuple(saved[pname].shape) != shape:
            raise ckpt.CheckpointMismatch(f"checkpoint does not fit {point.model}: {pname} has shape "
                                          f"{tuple(saved[pname].shape)}, expected {shape} (wrong --num-classes?)")
    ms.load_param_into_net(net, saved, strict_load=True)
    net.set_train(False)
    return net


def setup(device: str) -> None:
    """Graph mode on ``device`` (PyNative op dispatch is not usable with this numpy; graph mode is)."""
    import mindspore as ms

    ms.set_device({"cpu": "CPU", "gpu": "GPU", "ascend": "Ascend"}[device])
    ms.set_context(mode=ms.GRAPH_MODE)


__all__ = ["Checkpoint", "MindzooError", "build_network", "resolve", "run_prefix", "setup"]
