"""torch process set-up: device, threads, seeds and RNG state, the process group.

``--device cpu`` trains in fp32 on the CPU; ``--device gpu`` on CUDA (``LOCAL_RANK``
picks the GPU of a local worker). Data parallelism joins a process group over
TCP at rank 0's address (:mod:`.cluster`): gloo on CPU, NCCL on GPU.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch

from mindzoo.engine import distributed
from mindzoo.engine.torch.cluster import TorchClusterEnv
from mindzoo.engine.torch.launch import ENV_RESULT_DIR
from mindzoo.errors import MindzooError

__all__ = ["Runtime", "join", "pin_local_worker", "rng_state", "seed_everything", "select_device", "set_rng_state",
           "set_threads"]

@dataclass(frozen=True)
class Runtime:
    device: str
    rank: int
    world_size: int


def select_device(device: str, local_rank: int) -> torch.device:
    if device == "cpu":
        return torch.device("cpu")
    if device == "gpu":
        if not torch.cuda.is_available():
            # No GPU, or a driver older than this torch's CUDA needs (CUDA 13: >= 580): say which CUDA it is.
            raise MindzooError(f"--device gpu: torch sees no CUDA device on this machine (torch {torch.__version__} "
                               f"is built for CUDA {torch.version.cuda}: the node needs a GPU and an NVIDIA driver "
                               "for that CUDA; or use --device cpu)")
        index = local_rank % torch.cuda.device_count()
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    raise MindzooError(f"--device {device}: the torch engine runs on cpu or gpu (use --engine mindspore)")


def set_threads(threads: int, share: int) -> None:
    """Intra-op threads: ``threads`` if given, else this process's share of the CPUs."""
    wanted = threads or share
    if wanted and torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)


def pin_local_worker(env: TorchClusterEnv, local_processes: int) -> bool:
    """A local worker keeps to its own contiguous share of the cores (as the MindSpore launcher pins them):
    workers sharing cores slow each other down far more than the all-reduce costs. True when pinned."""
    if local_processes < 2 or not hasattr(os, "sched_setaffinity"):
        return False
    cores = distributed.core_sets(local_processes)[env.local_rank % local_processes]
    if cores:
        os.sched_setaffinity(0, cores)
    return bool(cores)


def join(device: str, env: TorchClusterEnv) -> Runtime:
    """Join the process group when launched as one of several processes; this process's rank and world."""
    import torch.distributed as dist

    if env.world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device == "gpu" else "gloo"
        dist.init_process_group(backend, init_method=env.init_method, rank=env.rank, world_size=env.world_size,
                                timeout=timedelta(minutes=30))
    result_dir = os.environ.get(ENV_RESULT_DIR)  # set by the torchrun launcher: one result file per rank
    if result_dir:
        os.environ[distributed.ENV_RESULT] = os.path.join(result_dir, f"rank{env.rank}.json")
    return Runtime(device, env.rank, env.world_size)


def seed_everything(seed: int) -> None:
    """Python, numpy and torch (CPU and every GPU) from one seed, as MindSpore's ``set_seed`` does."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Host and torch RNG state as JSON-able lists."""
    version, words, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": [version, list(words), gauss], "numpy": [kind, keys.tolist(), pos, has_gauss, cached],
             "torch": torch.get_rng_state().tolist()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict) -> None:
    if "python" in state:
        version, words, gauss = state["python"]
        random.setstate((version, tuple(words), gauss))
    if "numpy" in state:
        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    if "torch" in state:
        torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():  # a resume on another GPU count keeps the fresh state
            torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in cuda])
