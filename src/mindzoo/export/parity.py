"""The exported MindIR must compute what the checkpointed network computes.

The MindIR is loaded back (``mindspore.load`` + ``nn.GraphCell``) and run on the
fixed batch the export traced; the largest absolute logit difference against
the network must stay within the tolerance, else :class:`ParityError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mindzoo.errors import MindzooError
from mindzoo.export.formats import example_input


class ParityError(MindzooError):
    """The MindIR's outputs differ from the checkpointed network's."""


def max_abs_diff(net: Any, mindir: Path, shape: tuple[int, ...], seed: int = 0) -> float:
    import mindspore as ms

    x = ms.Tensor(example_input(shape, seed))
    expected = net(x).asnumpy().astype(np.float64)
    try:
        graph = ms.nn.GraphCell(ms.load(str(mindir)))
        got = graph(x).asnumpy().astype(np.float64)
    except (RuntimeError, ValueError, TypeError) as err:
        raise ParityError(f"the exported MindIR {mindir.name} cannot be loaded and run: "
                          f"{str(err).strip().splitlines()[0][:200]}") from None
    if got.shape != expected.shape:
        raise ParityError(f"MindIR output shape {got.shape} differs from the network's {expected.shape}")
    if not np.isfinite(got).all():
        return float("inf")
    return float(np.abs(got - expected).max())


def check(net: Any, mindir: Path, shape: tuple[int, ...], tolerance: float) -> float:
    """Max abs logit difference (raises :class:`ParityError` above ``tolerance``)."""
    diff = max_abs_diff(net, mindir, shape)
    if not diff <= tolerance:
        raise ParityError(f"parity check failed: the MindIR's logits differ from the checkpoint's by up to "
                          f"{diff:.3g} (tolerance {tolerance:g}) on a fixed {list(shape)} batch; not published")
    return diff
