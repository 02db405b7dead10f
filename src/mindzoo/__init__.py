"""mindzoo: MindSpore ModelZoo image-classification recipes as a Kubeflow pipeline."""

__version__ = "0.1.0"

import os as _os

# oneDNN picks an ISA whose convolution kernels MindSpore 2.10 lacks on some CPUs and falls
# back to a reference path ~50x slower; AVX2 kernels exist everywhere we run. It must be set
# before the process's first convolution, so it is set as early as mindzoo is imported.
_os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
