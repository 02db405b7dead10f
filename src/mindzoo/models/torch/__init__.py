"""PyTorch implementations of the model zoo; importing registers every model.

Same file names, model names, module tree and parameter names as
:mod:`mindzoo.models.mindspore` (BatchNorm ``weight``/``bias``/``running_*``
where MindSpore has ``gamma``/``beta``/``moving_*``: :mod:`mindzoo.convert` maps
them), built from the same :mod:`mindzoo.archs` configs. MindSpore conventions
(TF 'same' padding, LRN, BatchNorm momentum) live in :mod:`.layers`.
"""

from mindzoo.models.torch import googlenet, inception_v4, resnet, zfnet

__all__ = ["googlenet", "inception_v4", "resnet", "zfnet"]
