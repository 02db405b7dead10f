"""ZFNet/SPPNet parameter names as the ModelZoo's ``research/cv/SPPNet/src/sppnet.py`` saves them.

mindzoo keeps the convs under ``features.conv<i>.conv`` and the hidden FCs in a list
(``fcs.<i>``) beside ``classifier``; the ModelZoo names them ``conv<i>`` and
``fc1..fc3``, the classifier being the last FC. Checked against the reference lists
(tests/models/test_modelzoo_names.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["modelzoo_names"]

_CONV = re.compile(r"features\.conv(\d+)\.conv\.(weight|bias)")
_FC = re.compile(r"fcs\.(\d+)\.(weight|bias)")


def modelzoo_names(model: str, names: Sequence[str]) -> dict[str, str]:  # noqa: ARG001 - one signature per family
    """mindzoo name -> ModelZoo name for every parameter in ``names`` (unmapped names are left out)."""
    hidden = len({m.group(1) for n in names if (m := _FC.fullmatch(n))})
    out = {}
    for name in names:
        if m := _CONV.fullmatch(name):
            out[name] = f"conv{m.group(1)}.{m.group(2)}"
        elif m := _FC.fullmatch(name):
            out[name] = f"fc{int(m.group(1)) + 1}.{m.group(2)}"
        elif name.startswith("classifier."):  # the last FC: fc3 with the recipe's two hidden FCs
            out[name] = f"fc{hidden + 1}.{name.split('.', 1)[1]}"
    return out
