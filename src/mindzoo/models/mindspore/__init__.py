"""MindSpore implementations of the model zoo; importing registers every model.

Family files share one skeleton: paper link, imports, ``__all__``, blocks, model
class, ``_create_<family>()``, ``@register_model`` entrypoints. Architecture
tables come from :mod:`mindzoo.archs`. Every model exposes ``forward_features``
and ``forward_stages`` (named intermediate outputs, for shape checks).
"""

import os

# MindSpore 2.10 gives oneDNN plain NCHW tensors; on AVX-512/AMX CPUs oneDNN then runs every k>1 conv
# on its reference kernel (~0.2 GFLOP/s). Capped at AVX2 it picks its jit GEMM kernel (~50x faster).
# Takes effect if set before the process's first convolution; an explicit user setting wins.
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")

from mindzoo.models.mindspore import googlenet, inception_v4, resnet, zfnet  # noqa: E402

__all__ = ["googlenet", "inception_v4", "resnet", "zfnet"]
