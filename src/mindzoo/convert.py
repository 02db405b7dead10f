"""Checkpoint conversion between the torch and MindSpore implementations.

Both frameworks' models share one module tree (:mod:`mindzoo.models.torch` mirrors
:mod:`mindzoo.models.mindspore`), so parameter names differ only at BatchNorm
leaves; conv, Dense/Linear and BatchNorm tensors have the same layout::

    torch  <prefix>.weight / .bias / .running_mean / .running_var  (+ .num_batches_tracked)
    MindSpore <prefix>.gamma / .beta / .moving_mean / .moving_variance

A prefix is a BatchNorm when it owns ``running_mean`` (torch) or ``moving_mean``
(MindSpore), so the mapping needs no model; ``model_name`` additionally checks that
the names are exactly the model's. Importing this module imports neither
framework; the MindSpore side (safetensors with MindSpore names) needs no torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["load_arrays_into_mindspore", "load_into_mindspore", "mindspore_names", "mindspore_params",
           "mindspore_to_torch", "save_safetensors_ms_names", "torch_names", "torch_to_mindspore"]

_BN_TORCH_TO_MS = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean",
                   "running_var": "moving_variance"}
_BN_MS_TO_TORCH = {v: k for k, v in _BN_TORCH_TO_MS.items()}
_TORCH_ONLY = "num_batches_tracked"  # torch BatchNorm counter; MindSpore has none (0 on the way back)


def _split(name: str) -> tuple[str, str]:
    prefix, _, leaf = name.rpartition(".")
    return prefix, leaf


def _bn_prefixes(names: Iterable[str], marker: str) -> set[str]:
    return {_split(n)[0] for n in names if _split(n)[1] == marker}


def mindspore_names(torch_keys: Iterable[str]) -> dict[str, str]:
    """torch ``state_dict`` key -> MindSpore parameter name (``num_batches_tracked`` dropped)."""
    keys = list(torch_keys)
    bn = _bn_prefixes(keys, "running_mean")
    out = {}
    for key in keys:
        prefix, leaf = _split(key)
        if leaf == _TORCH_ONLY:
            continue
        out[key] = f"{prefix}.{_BN_TORCH_TO_MS[leaf]}" if prefix in bn and leaf in _BN_TORCH_TO_MS else key
    return out


def torch_names(ms_names: Iterable[str]) -> dict[str, str]:
    """MindSpore parameter name -> torch ``state_dict`` key."""
    names = list(ms_names)
    bn = _bn_prefixes(names, "moving_mean")
    out = {}
    for name in names:
        prefix, leaf = _split(name)
        out[name] = f"{prefix}.{_BN_MS_TO_TORCH[leaf]}" if prefix in bn and leaf in _BN_MS_TO_TORCH else name
    return out


def _torch_reference_keys(model_name: str) -> set[str]:
    import torch

    from mindzoo.registry import create_model

    with torch.device("meta"):  # names only: no memory, no initialisation cost
        return set(create_model(model_name, framework="torch").state_dict())


def _check_names(actual: Iterable[str], expected: Iterable[str], model_name: str) -> None:
    actual, expected = set(actual), set(expected)
    if actual != expected:
        missing, unexpected = sorted(expected - actual), sorted(actual - expected)
        raise ValueError(f"checkpoint does not match model {model_name!r}: missing {missing[:5]} "
                         f"({len(missing)}), unexpected {unexpected[:5]} ({len(unexpected)})")


def _as_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "asnumpy"):  # MindSpore Tensor / Parameter
        return value.asnumpy()
    if hasattr(value, "detach"):  # torch Tensor
        return value.detach().cpu().numpy()
    return np.asarray(value)


def torch_to_mindspore(state_dict: Mapping[str, Any], model_name: str | None = None) -> dict[str, np.ndarray]:
    """A torch ``state_dict`` as numpy arrays keyed by MindSpore parameter names (copies)."""
    if model_name is not None:
        reference = {k for k in _torch_reference_keys(model_name) if _split(k)[1] != _TORCH_ONLY}
        _check_names((k for k in state_dict if _split(k)[1] != _TORCH_ONLY), reference, model_name)
    names = mindspore_names(state_dict)
    return {ms_name: np.array(_as_numpy(state_dict[key]), copy=True) for key, ms_name in names.items()}


def mindspore_to_torch(params: Any, model_name: str | None = None) -> dict[str, Any]:
    """MindSpore parameters (a Cell, or a mapping name -> Parameter/Tensor/array) as a torch ``state_dict``."""
    import torch

    if hasattr(params, "parameters_dict"):
        params = params.parameters_dict()
    names = torch_names(params)
    out = {key: torch.from_numpy(np.array(_as_numpy(params[name]), copy=True)) for name, key in names.items()}
    for prefix in _bn_prefixes(out, "running_mean"):
        out[f"{prefix}.{_TORCH_ONLY}"] = torch.tensor(0, dtype=torch.long)
    if model_name is not None:
        _check_names(out, _torch_reference_keys(model_name), model_name)
    return out


def mindspore_params(net: Any) -> dict[str, np.ndarray]:
    """Every parameter of a MindSpore Cell (BatchNorm moving statistics included) as numpy arrays."""
    return {name: param.asnumpy().copy() for name, param in net.parameters_dict().items()}


def load_arrays_into_mindspore(net: Any, params: Mapping[str, Any], *, strict: bool = True) -> None:
    """Load MindSpore-named arrays into ``net``; ``strict``: every name on both sides must match."""
    import mindspore as ms

    ms_params = {name: ms.Parameter(ms.Tensor(np.ascontiguousarray(_as_numpy(v))), name=name)
                 for name, v in params.items()}
    _load(net, ms_params, strict)


def _load(net: Any, params: dict[str, Any], strict: bool) -> None:
    import mindspore as ms

    not_loaded, unexpected = ms.load_param_into_net(net, params, strict_load=True)
    if strict and (not_loaded or unexpected):
        raise ValueError(f"parameters not loaded: {sorted(not_loaded)[:5]} ({len(not_loaded)}); "
                         f"unexpected in checkpoint: {sorted(unexpected)[:5]} ({len(unexpected)})")


def save_safetensors_ms_names(params: Mapping[str, Any], path: str | Path, *,
                              metadata: dict[str, str] | None = None) -> Path:
    """Write a ``.safetensors`` file with MindSpore parameter names (MindSpore 2.10 reads it, no torch needed).

    ``params``: MindSpore-named arrays (:func:`torch_to_mindspore`, :func:`mindspore_params`) or a
    torch ``state_dict`` (recognised by its ``running_mean``/``num_batches_tracked`` keys and converted).
    """
    from safetensors.numpy import save_file

    leaves = {_split(k)[1] for k in params}
    if leaves & {"running_mean", _TORCH_ONLY}:
        params = torch_to_mindspore(params)
    arrays = {name: np.ascontiguousarray(_as_numpy(v)) for name, v in params.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(arrays, str(path), metadata=metadata)
    return path


def load_into_mindspore(net: Any, path: str | Path, *, strict: bool = True) -> None:
    """Load a MindSpore-named ``.safetensors`` (or ``.ckpt``) file into ``net``."""
    import mindspore as ms

    path = Path(path)
    fmt = "safetensors" if path.suffix == ".safetensors" else "ckpt"
    _load(net, ms.load_checkpoint(str(path), format=fmt), strict)
