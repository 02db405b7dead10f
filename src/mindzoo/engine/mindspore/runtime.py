"""MindSpore process set-up: device target, execution mode, threads, seeds, the dynamic cluster.

One code path serves CPU, GPU and Ascend: only the ``device_target`` string
differs. Data parallelism uses MindSpore's dynamic cluster (no rank table): the
``MS_*`` variables are already in the environment (set by
:mod:`mindzoo.engine.distributed`, by msrun, or by the Kubernetes launcher) and
``mindspore.communication.init()`` joins the cluster. Calls are idempotent so
several trainings (tests) can share one process.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np

from mindzoo.engine import distributed

_DEVICES = {"cpu": "CPU", "gpu": "GPU", "ascend": "Ascend"}
_cluster: tuple[int, int] | None = None


@dataclass(frozen=True)
class Runtime:
    device: str
    rank: int
    world_size: int


def setup(device: str, mode: str, threads: int) -> None:
    """Select the device and mode (once per process; the same values again are a no-op)."""
    import mindspore as ms

    target = _DEVICES[device]
    device_id = int(os.environ.get("DEVICE_ID", os.environ.get(distributed.ENV_LOCAL_RANK, "0")))
    ms.set_device(target, device_id if target != "CPU" else None)
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    if threads and target == "CPU":
        from mindspore.device_context.cpu import op_tuning

        try:
            op_tuning.threads_num(threads)
        except RuntimeError:  # already set in this process (an earlier training): keep it
            pass


def join_cluster(device: str) -> Runtime:
    """Join the dynamic cluster when ``MS_ROLE`` is set; return this process's rank and world size."""
    global _cluster
    if not distributed.in_cluster():
        return Runtime(device, 0, 1)
    if _cluster is None:
        import mindspore as ms
        from mindspore.communication import get_group_size, get_rank, init

        init()  # the scheduler role never returns from here: MindSpore ends the process when the job is done
        _cluster = get_rank(), get_group_size()
        # Fuse the per-parameter gradient all-reduces into buckets: one round trip per bucket, not per tensor.
        ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True,
                                     device_num=_cluster[1], comm_fusion={"allreduce": {"mode": "size", "config": 64}})
    return Runtime(device, *_cluster)


def seed_everything(seed: int) -> None:
    """Python, numpy and MindSpore (initialisers, random ops) from one seed, as ``set_seed`` does."""
    import mindspore as ms

    random.seed(seed)
    np.random.seed(seed % 2**32)
    ms.set_seed(seed)


def rng_state() -> dict:
    """Host RNG state (Python, numpy, MindSpore's default generator) as JSON-able lists."""
    import mindspore as ms

    version, words, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": [version, list(words), gauss], "numpy": [kind, keys.tolist(), pos, has_gauss, cached],
            "mindspore": ms.get_rng_state().asnumpy().tolist()}


def set_rng_state(state: dict) -> None:
    import mindspore as ms

    if "python" in state:
        version, words, gauss = state["python"]
        random.setstate((version, tuple(words), gauss))
    if "numpy" in state:
        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    if "mindspore" in state:
        current = ms.get_rng_state()
        ms.set_rng_state(ms.Tensor(np.asarray(state["mindspore"], dtype=current.asnumpy().dtype)))
