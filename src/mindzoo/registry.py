"""Model registry keyed by (framework, name).

Each framework implements the same model names (see :data:`mindzoo.archs.MODELS`)
in ``mindzoo.models.<framework>``. That package is imported on first use, so
importing this module imports no deep-learning framework: a MindSpore image
never imports torch and the reverse.

>>> from mindzoo.registry import create_model
>>> net = create_model("resnet50_bam", num_classes=10, input_size=64)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

from mindzoo.archs import MODELS
from mindzoo.errors import ConfigError, NotInEnvironment

__all__ = ["FRAMEWORKS", "create_model", "is_model", "list_models", "register_model"]

F = TypeVar("F", bound=Callable[..., Any])

FRAMEWORKS: dict[str, tuple[str, str]] = {
    # framework -> (package holding its models, the distribution it needs)
    "mindspore": ("mindzoo.models.mindspore", "mindspore"),
    "torch": ("mindzoo.models.torch", "torch"),
}

_REGISTRY: dict[tuple[str, str], Callable[..., Any]] = {}


def _framework_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) >= 3 and parts[:2] == ["mindzoo", "models"] and parts[2] in FRAMEWORKS:
        return parts[2]
    raise ValueError(f"cannot infer the framework of {module!r}; pass register_model(framework=...)")


def register_model(fn: F | None = None, *, framework: str | None = None, name: str | None = None) -> Any:
    """Register a keyword-only model builder under (framework, function name).

    The framework defaults to the package the builder lives in
    (``mindzoo.models.<framework>.<family>``). Usable bare or with arguments.
    """

    def decorate(builder: F) -> F:
        key = (framework or _framework_of(builder.__module__), name or builder.__name__)
        if key in _REGISTRY and _REGISTRY[key] is not builder:
            raise ValueError(f"model {key[1]!r} is already registered for {key[0]}")
        _REGISTRY[key] = builder
        return builder

    return decorate(fn) if fn is not None else decorate


def _load(framework: str) -> None:
    if framework not in FRAMEWORKS:
        raise ConfigError("framework", f"unknown framework {framework!r}; available: {', '.join(FRAMEWORKS)}")
    package, dist = FRAMEWORKS[framework]
    try:
        importlib.import_module(package)
    except ModuleNotFoundError as err:
        if err.name == dist:
            raise NotInEnvironment(f"framework {framework!r} needs the {dist!r} package, "
                                   "which this Python environment lacks") from None
        if err.name == package:
            raise ConfigError("framework", f"no {framework} models in this installation") from None
        raise


def list_models(framework: str | None = None) -> list[str]:
    """Sorted model names; without a framework, the framework-neutral catalogue (imports nothing)."""
    if framework is None:
        return sorted(MODELS)
    _load(framework)
    return sorted(n for fw, n in _REGISTRY if fw == framework)


def is_model(name: str, framework: str | None = None) -> bool:
    return name in list_models(framework)


def create_model(name: str, *, framework: str = "mindspore", num_classes: int = 1000, **kwargs: Any) -> Any:
    """Build model ``name`` of ``framework``; extra keyword arguments go to its builder.

    Raises ``ConfigError`` (a ``ValueError``) naming the available models or frameworks.
    """
    _load(framework)
    builder = _REGISTRY.get((framework, name))
    if builder is None:
        available = ", ".join(list_models(framework))
        raise ConfigError("model", f"unknown model {name!r}; available: {available}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError("num_classes", f"must be a positive integer (got {num_classes!r})")
    return builder(num_classes=num_classes, **kwargs)
