"""The torch engine: the same backend interface as :mod:`mindzoo.engine.mindspore`, on PyTorch.

``mindzoo train --engine torch`` trains the torch ports of the models
(:mod:`mindzoo.models.torch`) with the recipes' math reproduced: MindSpore's
Momentum and RMSProp (eps inside the square root), the recipes' label-smoothing
off values, fixed/dynamic loss scale, autocast AMP on GPU. The input pipeline is
the MindSpore one (same MindRecord reader and transforms, numpy out), so both
engines see identical preprocessing. Checkpoints keep the MindSpore layout with
weights as ``model.safetensors`` under MindSpore parameter names, which
``mindzoo export`` turns into a MindIR without importing torch.

Modules: :mod:`.backend` (the object the trainer drives), :mod:`.steps` (loss,
optimizers, the train step), :mod:`.data`, :mod:`.runtime` (device, threads,
seeds, process group), :mod:`.cluster` and :mod:`.launch` (torchrun; neither
imports torch).
"""

import os as _os

# Set before torch loads its OpenMP runtime (the engine imports torch only below this package): idle OpenMP
# threads sleep instead of spinning. With spinning threads a CPU shared with other work (the input pipeline's
# threads, other processes) trains up to 10x slower (measured: 220 s against 20 s for the same 40 steps on two
# busy cores). An explicit setting in the environment wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
