"""The torch engine backend: the methods of :mod:`mindzoo.engine.mindspore.backend`, on PyTorch.

The framework-neutral trainer (:mod:`mindzoo.engine.trainer`) and evaluator drive
it unchanged. Checkpoint folders keep the engine-neutral layout with torch's
files in MindSpore's terms: ``model.safetensors`` (every parameter and BatchNorm
statistic under its MindSpore name, loadable by MindSpore without torch) and
``optimizer.safetensors`` (moments named as MindSpore names them, and the LR
position ``global_step``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mindzoo import convert
from mindzoo.archs import DataConfig
from mindzoo.engine.checkpoint import (
    OPTIMIZER_SAFETENSORS, WEIGHTS, WEIGHTS_SAFETENSORS, CheckpointMismatch, weights_file,
)
from mindzoo.engine.loss import DynamicLossScale, LossScalePlan
from mindzoo.engine.plan import amp_settings
from mindzoo.engine.torch import data, runtime, steps
from mindzoo.engine.torch.cluster import TorchClusterEnv
from mindzoo.engine.torch.input_stage import InputStage


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Backend:
    framework = "torch"

    def __init__(self, *, device: str = "cpu", mode: str = "graph", threads: int = 0, data_workers: int = 0,
                 local_processes: int = 1) -> None:
        self.device, self.mode = device, mode  # mode (graph/pynative) is MindSpore's; torch runs eagerly
        self.threads, self.data_workers_flag = threads, data_workers
        self.local_processes = max(1, local_processes)
        self.share = max(1, _cpus() // self.local_processes)  # CPUs of this process (set again once pinned)
        self.env = TorchClusterEnv()
        self.torch_device = torch.device("cpu")
        self.net: Any = None
        self.model: Any = None  # the net, wrapped in DistributedDataParallel when data-parallel
        self.optimizer: Any = None
        self.scaler: DynamicLossScale | None = None
        self._step: steps.TrainStep | None = None
        self._input: InputStage | None = None  # one per run: uint8 training batches → normalised float32
        self._lr: np.ndarray = np.zeros(1, np.float32)
        self._names: dict[str, str] = {}  # torch state_dict key -> MindSpore name
        self._position = 0
        self.world_size = 1
        self.amp: torch.dtype | None = None
        self.lr_mult: dict[str, float] = {}  # MindSpore name -> LR multiplier (fine-tuning's head LR)
        self._built: tuple[str, int, dict[str, Any]] = ("", 0, {})

    # -- process ---------------------------------------------------------------------------
    def start(self) -> runtime.Runtime:
        self.env = TorchClusterEnv.from_env()
        self.local_processes = max(self.local_processes, self.env.local_world_size)  # also under a user's torchrun
        pinned = runtime.pin_local_worker(self.env, self.local_processes)
        self.share = _cpus() if pinned else max(1, _cpus() // self.local_processes)  # pinned: the mask is our share
        runtime.set_threads(self.threads, self.share)
        self.torch_device = runtime.select_device(self.device, self.env.local_rank)
        if self.device == "gpu":
            torch.backends.cudnn.benchmark = True  # fixed input shapes: pick the fastest kernels once
        rt = runtime.join(self.device, self.env)
        self.world_size = rt.world_size
        return rt

    @property
    def data_workers(self) -> int:
        return self.data_workers_flag or self.share

    def seed(self, seed: int) -> None:
        runtime.seed_everything(seed)

    def rng_state(self) -> dict:
        return runtime.rng_state()

    def set_rng_state(self, state: dict) -> None:
        runtime.set_rng_state(state)

    # -- network and training ----------------------------------------------------------------
    def build_model(self, name: str, *, num_classes: int, input_size: int, **kwargs: Any) -> None:
        from mindzoo.registry import create_model

        self.net = create_model(name, framework="torch", num_classes=num_classes, input_size=input_size, **kwargs)
        self.net.to(self.torch_device)
        if self.torch_device.type == "cuda":
            self.net.to(memory_format=torch.channels_last)  # tensor-core friendly; the same math
        self._names = convert.mindspore_names(self.net.state_dict())
        self.model = self.net
        self._built = (name, num_classes, {"input_size": input_size, **kwargs})

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every parameter and BatchNorm statistic by MindSpore name."""
        return {self._names[k]: tuple(v.shape) for k, v in self.net.state_dict().items() if k in self._names}

    def head_names(self) -> set[str]:
        """The parameters whose shape follows the class count (the net built again on the meta device, with
        one class more)."""
        from mindzoo.engine.weights import head_names
        from mindzoo.registry import create_model

        name, classes, kwargs = self._built
        with torch.device("meta"):
            other = create_model(name, framework="torch", num_classes=classes + 1, **kwargs).state_dict()
        names = convert.mindspore_names(other)
        return head_names(self.param_shapes(), {names[k]: tuple(v.shape) for k, v in other.items() if k in names})

    def assign(self, arrays: dict[str, np.ndarray]) -> None:
        """Set parameters from MindSpore-named numpy arrays (shapes already checked; layouts are the same)."""
        keys = {ms_name: key for key, ms_name in self._names.items()}
        state = self.net.state_dict()
        with torch.no_grad():
            for name, value in arrays.items():
                target = state[keys[name]]
                target.copy_(torch.from_numpy(np.ascontiguousarray(value)).to(target.device, target.dtype))

    def freeze(self, names: set[str]) -> None:
        """Exclude parameters from training (before :meth:`setup_training` builds the optimizer)."""
        for key, param in self.net.named_parameters():
            if self._names[key] in names:
                param.requires_grad_(False)

    def _named_parameters(self) -> dict[str, torch.nn.Parameter]:
        """Trainable parameters by MindSpore name (the names the recipes' no-decay rules match)."""
        return {self._names[key]: p for key, p in self.net.named_parameters() if p.requires_grad}

    def setup_training(self, recipe: Any, lr: np.ndarray, plan: LossScalePlan) -> None:
        self._lr = lr
        self.optimizer = steps.build_optimizer(self._named_parameters(), recipe.optim, self.lr_mult)
        if plan.kind == "dynamic":
            self.scaler = DynamicLossScale(plan.dynamic_init, plan.dynamic_factor, plan.dynamic_window)
        level, _ = amp_settings(recipe, self.device)  # autocast keeps BatchNorm in fp32 whatever the recipe says
        self.amp = steps.amp_dtype(level, self.device)
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.torch_device.index] if self.torch_device.type == "cuda" else None
            self.model = DistributedDataParallel(self.net, device_ids=ids)  # broadcasts rank 0's weights
        self.net.train()
        self._step = steps.TrainStep(self.model, steps.build_loss(recipe.loss, recipe.num_classes), self.optimizer,
                                     plan, amp=self.amp, scaler=self.scaler, world_size=self.world_size)
        self._position = 0

    def _tensors(self, images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """On the device; uint8 (training) images stay uint8 there: a quarter of the bytes to copy."""
        x = torch.from_numpy(np.require(images, np.uint8 if images.dtype == np.uint8 else np.float32, ["C", "W"]))
        y = torch.from_numpy(np.require(labels, np.int64, ["C", "W"]))
        if self.torch_device.type == "cuda":
            x = x.pin_memory().to(self.torch_device, non_blocking=True)
            if x.is_floating_point():
                x = x.contiguous(memory_format=torch.channels_last)
            y = y.pin_memory().to(self.torch_device, non_blocking=True)
        return x, y

    def train_step(self, batch: Any) -> float:
        images, labels = self._tensors(*batch[:2])
        if images.dtype == torch.uint8:  # colour jitter and normalisation, on the device
            jitter = torch.from_numpy(np.asarray(batch[2])).to(images.device) if len(batch) > 2 else None
            images = self._input(images, jitter)
            if images.is_cuda:
                images = images.contiguous(memory_format=torch.channels_last)
        lr = float(self._lr[min(self._position, len(self._lr) - 1)])
        loss, applied = self._step(images, labels, lr)
        self._position += int(applied)
        return loss

    def global_step(self) -> int:
        """The LR array position: optimizer updates applied (skipped overflow steps do not count)."""
        return self._position

    # -- data ----------------------------------------------------------------------------------
    def steps_per_epoch(self, local: Path, data_cfg: DataConfig, batch_size: int, rank: int) -> int:
        return data.steps_per_epoch(local, data_cfg, batch_size, rank=rank, world_size=self.world_size,
                                    workers=self.data_workers)

    def epoch(self, local: Path, data_cfg: DataConfig, batch_size: int, *, size: int, rank: int, seed: int,
              epoch: int, skip: int = 0, limit: int = 0) -> tuple[Iterator[Any], int]:
        if self._input is None or self._input.cfg != data_cfg:
            self._input = InputStage(data_cfg, self.torch_device)
        return data.train_batches(local, data_cfg, batch_size, size=size, rank=rank, world_size=self.world_size,
                                  seed=data.epoch_seed(seed, epoch), workers=self.data_workers, skip=skip,
                                  limit=limit, device_jitter=self.device != "cpu")

    def predict(self, local: Path, data_cfg: DataConfig, split: str, batch_size: int, *, rank: int = 0,
                world_size: int = 1) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(float32 logits, labels) per batch over this rank's share of a split, in order; eval mode meanwhile."""
        self.net.eval()
        try:
            for images, labels, real in data.eval_batches(local, data_cfg, split, batch_size, rank=rank,
                                                          world_size=world_size, workers=self.data_workers):
                x, _ = self._tensors(images[:real], labels)
                with torch.inference_mode(), torch.autocast(x.device.type, dtype=self.amp or torch.float32,
                                                            enabled=self.amp is not None):
                    logits = self.net(x)
                yield logits.float().cpu().numpy(), labels
        finally:
            self.net.train()

    def sum_over_ranks(self, values: np.ndarray) -> np.ndarray:
        """Element-wise sum of a small vector over all data-parallel ranks (identity on one process)."""
        if self.world_size == 1:
            return values
        import torch.distributed as dist

        tensor = torch.from_numpy(values.astype(np.float64)).to(self.torch_device)
        dist.all_reduce(tensor)
        return tensor.cpu().numpy()

    def file_ids(self, local: Path, split: str) -> list[str]:
        return data.file_ids(local, split)

    # -- weights ---------------------------------------------------------------------------------
    def save(self, folder: Path, *, optimizer: bool) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        convert.save_safetensors_ms_names(self.net.state_dict(), folder / WEIGHTS_SAFETENSORS,
                                          metadata={"framework": "torch"})
        if optimizer and self.optimizer is not None:
            from safetensors.numpy import save_file

            save_file(steps.optimizer_state(self.optimizer, self._named_parameters(), self._position),
                      str(folder / OPTIMIZER_SAFETENSORS))

    def load(self, folder: Path, *, optimizer: bool, where: str) -> None:
        """Load weights (a torch checkpoint's safetensors, or a MindSpore ``model.ckpt``) and optimizer state;
        refuse parameters that do not fit this network."""
        saved = _read_weights(weights_file(folder))
        _check_fits(self.net, self._names, saved, where)
        state = convert.mindspore_to_torch({self._names[k]: saved[self._names[k]] for k in self._names})
        current = self.net.state_dict()
        self.net.load_state_dict({k: v.to(current[k].device, current[k].dtype) for k, v in state.items()},
                                 strict=True)
        if optimizer and self.optimizer is not None and (folder / OPTIMIZER_SAFETENSORS).is_file():
            from safetensors.numpy import load_file

            arrays = load_file(str(folder / OPTIMIZER_SAFETENSORS))
            self._position = steps.load_optimizer_state(self.optimizer, self._named_parameters(), arrays)

    def weights_digest(self) -> str:
        """sha256 over the trainable parameters by MindSpore name (identical on every data-parallel rank)."""
        digest = hashlib.sha256()
        for name, param in sorted(self._named_parameters().items()):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(param.detach().float().cpu().numpy()).tobytes())
        return digest.hexdigest()


def _read_weights(path: Path) -> dict[str, np.ndarray]:
    """MindSpore-named arrays from ``model.safetensors`` (no MindSpore needed) or a MindSpore ``model.ckpt``."""
    if path.name != WEIGHTS:
        from safetensors.numpy import load_file

        return load_file(str(path))
    import mindspore as ms

    return {name: param.asnumpy() for name, param in ms.load_checkpoint(str(path)).items()}


def _check_fits(net: torch.nn.Module, names: dict[str, str], saved: dict[str, np.ndarray], where: str) -> None:
    shapes = {names[k]: tuple(v.shape) for k, v in net.state_dict().items() if k in names}
    missing = sorted(set(shapes) - set(saved))
    if missing:
        raise CheckpointMismatch(f"{where} does not fit this network: no parameter {missing[0]!r} "
                                 f"({len(missing)} missing)")
    for name, shape in shapes.items():
        got = tuple(saved[name].shape)
        if got != shape:
            raise CheckpointMismatch(f"{where} does not fit this network: {name} has shape {got}, expected {shape}")
