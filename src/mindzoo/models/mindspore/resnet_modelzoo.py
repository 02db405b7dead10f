"""ResNet50-BAM and GENet-Res50 parameter names as the ModelZoo saves them.

Both ModelZoo networks keep the stem as ``conv1``/``bn1`` and the stages as
``layer<i>.<j>`` on the network, where mindzoo has one ``features`` sequence
(``features.stem.0``, ``features.layer1.0``) and a ``ConvBn`` cell per conv:

- ResNet50-BAM (``research/cv/resnet50_bam/src/ResNet50_BAM.py``): a block's BN sits
  beside its conv (``conv2`` + ``bn2``), the projection is ``downsample.0/1`` and the
  attention after stage i is ``bam<i>`` with ``channel_att.gate_c`` (a sequence:
  1 = FC, 2 = BN, 4 = FC) and ``spatial_att.gate_s`` (indices as mindzoo's ``body``).
- GENet (``research/cv/GENet_Res50/src/GENet.py``, ``GEBlock.py``): ``conv<i>.conv`` +
  ``conv<i>.batchnorm``, the projection ``down_layer``, the gather ``downop`` and the
  excite ``mlpLayer`` (indices as mindzoo's ``gather`` / ``mlp``), the head ``end_point``.

Checked against the reference lists (tests/models/test_modelzoo_names.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["modelzoo_names", "modelzoo_order"]

_STEM = [(r"features\.stem\.0\.conv\.weight", "conv1.weight"), (r"features\.stem\.0\.bn\.(\w+)", r"bn1.\1")]
_BLOCK = r"features\.(layer\d+\.\d+)"

_BAM = [
    *_STEM,
    (_BLOCK + r"\.conv(\d)\.conv\.weight", r"\1.conv\2.weight"),
    (_BLOCK + r"\.conv(\d)\.bn\.(\w+)", r"\1.bn\2.\3"),
    (_BLOCK + r"\.shortcut\.conv\.weight", r"\1.downsample.0.weight"),
    (_BLOCK + r"\.shortcut\.bn\.(\w+)", r"\1.downsample.1.\2"),
    (r"features\.attn(\d)\.channel_gate\.fc1\.(\w+)", r"bam\1.channel_att.gate_c.1.\2"),
    (r"features\.attn(\d)\.channel_gate\.bn\.(\w+)", r"bam\1.channel_att.gate_c.2.\2"),
    (r"features\.attn(\d)\.channel_gate\.fc2\.(\w+)", r"bam\1.channel_att.gate_c.4.\2"),
    (r"features\.attn(\d)\.spatial_gate\.body\.(\d+)\.(\w+)", r"bam\1.spatial_att.gate_s.\2.\3"),
    (r"fc\.(\w+)", r"fc.\1"),
]

_GE = [
    *_STEM,
    (_BLOCK + r"\.conv(\d)\.conv\.weight", r"\1.conv\2.conv.weight"),
    (_BLOCK + r"\.conv(\d)\.bn\.(\w+)", r"\1.conv\2.batchnorm.\3"),
    (_BLOCK + r"\.shortcut\.conv\.weight", r"\1.down_layer.conv.weight"),
    (_BLOCK + r"\.shortcut\.bn\.(\w+)", r"\1.down_layer.batchnorm.\2"),
    (_BLOCK + r"\.attn\.gather\.(\d+)\.(\w+)", r"\1.downop.\2.\3"),
    (_BLOCK + r"\.attn\.mlp\.(\d+)\.(\w+)", r"\1.mlpLayer.\2.\3"),
    (r"fc\.(\w+)", r"end_point.\1"),
]

_RULES = {"resnet50_bam": _BAM, "genet": _GE}


def modelzoo_names(model: str, names: Sequence[str]) -> dict[str, str]:
    """mindzoo name -> ModelZoo name for every parameter in ``names`` (unmapped names are left out)."""
    rules = _RULES["genet" if model.startswith("genet_") else model]
    out = {}
    for name in names:
        for pattern, repl in rules:
            if re.fullmatch(pattern, name):
                out[name] = re.sub(f"^{pattern}$", repl, name)
                break
    return out


# Where the ModelZoo defines what mindzoo defines elsewhere (so saves it elsewhere): ResNet50-BAM's
# bam1..3 right after the stem; GENet's projection (down_layer) before the gather and excite layers.
_BAM_FIRST = re.compile(r"bam\d+\.")
_GE_BLOCK = re.compile(r"(layer\d+\.\d+)\.(conv\d|down_layer|downop|mlpLayer)\.")
_GE_RANK = {"down_layer": 1, "downop": 2, "mlpLayer": 3}


def modelzoo_order(names: Sequence[str]) -> list[str]:
    """ModelZoo names (given in mindzoo's order) in the ModelZoo's checkpoint order."""
    stem = [n for n in names if n.startswith(("conv1.", "bn1."))]
    rest = [n for n in names if n not in stem]
    bam = [n for n in rest if _BAM_FIRST.match(n)]
    rest = [n for n in rest if n not in bam]

    def block_key(item: tuple[int, str]) -> tuple[str, int, int]:
        index, name = item
        m = _GE_BLOCK.match(name)
        return (m.group(1), _GE_RANK.get(m.group(2), 0), index) if m else ("~", 0, index)  # the head stays last

    ordered = [n for _, n in sorted(enumerate(rest), key=block_key)] if not bam else rest
    return stem + bam + ordered
