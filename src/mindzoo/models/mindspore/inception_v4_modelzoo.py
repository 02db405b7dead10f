"""Inception-v4 parameter names as the ModelZoo's ``official/cv/Inception/inceptionv4/src/inceptionv4.py`` saves them.

The ModelZoo numbers its blocks ``features.<k>`` (0 = the whole stem, then every
Inception/Reduction block in order), names the stem's convs ``conv2d_1a_3x3`` ... and
branches ``branch_<b>`` (stem: ``mixed_4a_branch_<b>``), wraps each conv as
``<conv>.conv.conv`` + ``<conv>.conv.batchnorm``, and a branch of one conv is that conv,
not a sequence (mindzoo: a sequence of one, ``.0``). Inception-C's split heads are
``branch_<b>_1`` / ``branch_<b>_2`` beside the trunk ``branch_<b>``. The head is ``bn0``
(mindzoo ``head_bn``) and ``softmax.dense`` + ``softmax.batchnorm`` (``fc``, ``out_bn``).
Block numbers and sequence lengths come from the names themselves. Checked against the
reference list (tests/models/test_modelzoo_names.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["modelzoo_names", "modelzoo_order"]

_STEM_CONVS = {"conv1": "conv2d_1a_3x3", "conv2": "conv2d_2a_3x3", "conv3": "conv2d_2b_3x3"}
_HEAD = {"head_bn": "bn0", "fc": "softmax.dense", "out_bn": "softmax.batchnorm"}
_LEAF = re.compile(r"(.+)\.(conv\.weight|bn\.\w+)")
_PATH = re.compile(r"branches\.(\d+)(?:\.(trunk|left|right))?(?:\.(\d+))?")


def _leaf(name: str) -> tuple[str, str]:
    """(conv path, ModelZoo leaf): ``conv.weight`` -> ``conv.conv.weight``, ``bn.x`` -> ``conv.batchnorm.x``."""
    path, leaf = _LEAF.fullmatch(name).groups()
    return path, "conv.conv.weight" if leaf == "conv.weight" else "conv.batchnorm." + leaf.split(".", 1)[1]


def _sequences(paths: set[str]) -> dict[str, int]:
    """Length of every sequence a conv path sits in (``a.b.3`` -> sequence ``a.b``)."""
    lengths: dict[str, int] = {}
    for path in paths:
        head, _, index = path.rpartition(".")
        if index.isdigit():
            lengths[head] = max(lengths.get(head, 0), int(index) + 1)
    return lengths


def _branch(rest: str, seqs: dict[str, int], seq_of: str) -> str:
    """``branches.2.trunk.1`` -> ``branch_2.1``; ``branches.1.left.0`` -> ``branch_1_1``; one-conv sequences lose ``.0``."""
    b, part, index = _PATH.fullmatch(rest).groups()
    name = f"branch_{b}" + {"left": "_1", "right": "_2"}.get(part or "", "")
    if index is not None and part not in ("left", "right") and seqs.get(seq_of, 0) > 1:
        name += f".{index}"
    return name


def _block_numbers(blocks: set[str]) -> dict[str, int]:
    """ModelZoo index of every block after the stem: A1..An, reduction A, B1..Bm, reduction B, C1..Ck."""
    order = []
    for kind, reduction in (("a", "reduction_a"), ("b", "reduction_b"), ("c", None)):
        count = sum(1 for b in blocks if re.fullmatch(f"inception_{kind}\\d+", b))
        order += [f"inception_{kind}{i}" for i in range(1, count + 1)] + ([reduction] if reduction else [])
    return {block: i for i, block in enumerate(order, start=1)}


def modelzoo_names(model: str, names: Sequence[str]) -> dict[str, str]:  # noqa: ARG001 - one signature per family
    """mindzoo name -> ModelZoo name for every parameter in ``names`` (unmapped names are left out)."""
    conv_paths = {m.group(1) for n in names if n.startswith("features.") and (m := _LEAF.fullmatch(n))}
    seqs = _sequences(conv_paths)
    blocks = _block_numbers({p.split(".")[1] for p in conv_paths})
    out = {}
    for name in names:
        prefix, _, leaf = name.partition(".")
        if prefix in _HEAD:
            out[name] = f"{_HEAD[prefix]}.{leaf}"
            continue
        if prefix != "features" or not _LEAF.fullmatch(name):
            continue
        path, mz_leaf = _leaf(name)
        block, _, rest = path.removeprefix("features.").partition(".")
        if block in _STEM_CONVS:
            out[name] = f"features.0.{_STEM_CONVS[block]}.{mz_leaf}"
            continue
        if block.startswith("mixed_"):  # the stem's mixed blocks: mixed_4a_branch_1.2
            b, _, index = rest.removeprefix("branches.").partition(".")
            out[name] = f"features.0.{block}_branch_{b}{'.' + index if index else ''}.{mz_leaf}"
            continue
        if block not in blocks:
            continue
        out[name] = f"features.{blocks[block]}.{_branch(rest, seqs, path.rpartition('.')[0])}.{mz_leaf}"
    return out


def modelzoo_order(names: Sequence[str]) -> list[str]:
    """ModelZoo names (given in mindzoo's order) in the ModelZoo's checkpoint order: it defines the output
    Dense and its BatchNorm (``softmax``) before ``bn0``."""
    return [n for n in names if not n.startswith("bn0.")] + [n for n in names if n.startswith("bn0.")]
