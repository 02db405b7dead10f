"""GoogLeNet parameter names as the ModelZoo's ``research/cv/googlenet/src/googlenet.py`` saves them.

mindzoo wraps the stem and the Inception blocks in one ``features`` sequence
(``features.inception3a.branch2.0``); the ModelZoo keeps them on the network
(``block3a.b2.0``). Its pool branch holds the 1x1 conv alone (``b4``), where mindzoo's
``branch4`` is [MaxPool, conv] (``branch4.1``). Checked against the reference lists.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["modelzoo_names"]

_RULES = [
    (re.compile(r"features\.(conv\d+)\.(.+)"), r"\1.\2"),
    (re.compile(r"features\.inception(\w+?)\.branch4\.1\.(.+)"), r"block\1.b4.\2"),
    (re.compile(r"features\.inception(\w+?)\.branch(\d)\.(.+)"), r"block\1.b\2.\3"),
    (re.compile(r"(classifier\..+)"), r"\1"),
]


def modelzoo_names(model: str, names: Sequence[str]) -> dict[str, str]:  # noqa: ARG001 - one signature per family
    """mindzoo name -> ModelZoo name for every parameter in ``names`` (unmapped names are left out)."""
    out = {}
    for name in names:
        for pattern, repl in _RULES:
            if pattern.fullmatch(name):
                out[name] = pattern.sub(repl, name)
                break
    return out
