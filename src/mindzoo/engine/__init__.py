"""Training and evaluation engines behind ``mindzoo train`` and ``mindzoo evaluate``.

Framework-neutral parts live here — LR schedules (:mod:`.schedules`), parameter
groups and update rules (:mod:`.optim`), label smoothing and loss scaling
(:mod:`.loss`), checkpoint layout and publishing (:mod:`.checkpoint`), the
dynamic-cluster launcher (:mod:`.distributed`), the training loop
(:mod:`.trainer`), evaluation metrics and reports (:mod:`.evaluate`), plots
(:mod:`.plots`) and run planning (:mod:`.plan`). Everything that imports a
framework sits in ``engine/<framework>/`` behind one interface, the backend
(see :class:`mindzoo.engine.mindspore.backend.Backend`); the torch engine
provides the same class in ``engine/torch/``.
"""

from __future__ import annotations

import importlib
from typing import Any

BACKENDS = {"mindspore": "mindzoo.engine.mindspore.backend", "torch": "mindzoo.engine.torch.backend"}


def create_backend(framework: str = "mindspore", **kwargs: Any) -> Any:
    """The engine backend of ``framework`` (imported on first use)."""
    from mindzoo.errors import ConfigError

    if framework not in BACKENDS:
        raise ConfigError("engine", f"unknown engine {framework!r}; available: {', '.join(BACKENDS)}")
    return importlib.import_module(BACKENDS[framework]).Backend(**kwargs)
