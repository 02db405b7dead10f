"""The MindSpore engine backend: the one object the framework-neutral trainer and evaluator talk to.

A torch backend provides the same methods (``start``, ``seed``, ``build_model``,
``setup_training``, ``steps_per_epoch``, ``epoch``, ``train_step``, ``predict``,
``global_step``, ``save``, ``load``, ``weights_digest``, ``rng_state``,
``set_rng_state``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mindzoo.archs import DataConfig
from mindzoo.engine.checkpoint import OPTIMIZER, WEIGHTS, CheckpointMismatch, weights_file
from mindzoo.engine.loss import DynamicLossScale, LossScalePlan
from mindzoo.engine.mindspore import data, runtime
from mindzoo.engine.plan import amp_settings


def _cpus() -> int:
    """CPUs this process may use (a pinned local worker sees its own share)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Backend:
    framework = "mindspore"

    def __init__(self, *, device: str = "cpu", mode: str = "graph", threads: int = 0, data_workers: int = 0,
                 local_processes: int = 1) -> None:
        self.device, self.mode = device, mode
        share = max(1, _cpus() // max(1, local_processes))  # local workers split the machine
        if local_processes > 1 and _cpus() < (os.cpu_count() or 1):
            share = _cpus()  # pinned by the launcher: the affinity mask is this worker's share already
        self.threads = threads or (share if local_processes > 1 else 0)
        self.data_workers = data_workers or share
        self.net: Any = None
        self.optimizer: Any = None
        self.scaler: DynamicLossScale | None = None
        self._step: Any = None
        self._input: Any = None  # one DeviceInput per run: uint8 training batches → normalised float32
        self._sum: Any = None
        self._position = 0
        self.world_size = 1
        self.lr_mult: dict[str, float] = {}  # parameter name -> LR multiplier (fine-tuning's head LR)
        self._built: tuple[str, int, dict[str, Any]] = ("", 0, {})

    # -- process ---------------------------------------------------------------------------
    def start(self) -> runtime.Runtime:
        runtime.setup(self.device, self.mode, self.threads)
        rt = runtime.join_cluster(self.device)
        self.world_size = rt.world_size
        return rt

    def seed(self, seed: int) -> None:
        runtime.seed_everything(seed)

    def rng_state(self) -> dict:
        return runtime.rng_state()

    def set_rng_state(self, state: dict) -> None:
        runtime.set_rng_state(state)

    # -- network and training ----------------------------------------------------------------
    def build_model(self, name: str, *, num_classes: int, input_size: int, **kwargs: Any) -> None:
        from mindzoo.registry import create_model

        self.net = create_model(name, framework="mindspore", num_classes=num_classes, input_size=input_size,
                                **kwargs)
        self._built = (name, num_classes, {"input_size": input_size, **kwargs})

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every parameter (BatchNorm statistics included) by name, in definition order."""
        return {p.name: tuple(p.shape) for p in self.net.get_parameters()}

    def head_names(self) -> set[str]:
        """The parameters whose shape follows the class count (the net built again, uninitialised, with one
        class more)."""
        from mindzoo.engine.modelzoo import model_shapes
        from mindzoo.engine.weights import head_names

        name, classes, kwargs = self._built
        kwargs = dict(kwargs)
        other = model_shapes(name, num_classes=classes + 1, input_size=kwargs.pop("input_size"), model_kwargs=kwargs)
        return head_names(self.param_shapes(), other)

    def assign(self, arrays: dict[str, np.ndarray]) -> None:
        """Set parameters from numpy arrays by name (shapes already checked)."""
        import mindspore as ms

        params = {p.name: p for p in self.net.get_parameters()}
        for name, value in arrays.items():
            params[name].set_data(ms.Tensor(np.ascontiguousarray(value), params[name].dtype))

    def freeze(self, names: set[str]) -> None:
        """Exclude parameters from training (before :meth:`setup_training` builds the optimizer)."""
        for param in self.net.get_parameters():
            if param.name in names:
                param.requires_grad = False

    def setup_training(self, recipe: Any, lr: np.ndarray, plan: LossScalePlan) -> None:
        from mindzoo.engine.mindspore import steps

        loss_fn = steps.build_loss(recipe.loss, recipe.num_classes)
        self.optimizer = steps.build_optimizer(self.net, recipe.optim, lr, plan.optimizer_scale, self.lr_mult)
        if plan.kind == "dynamic":
            self.scaler = DynamicLossScale(plan.dynamic_init, plan.dynamic_factor, plan.dynamic_window)
        level, keep_bn = amp_settings(recipe, self.device)
        self._step = steps.build_train_step(self.net, loss_fn, self.optimizer, plan, amp_level=level,
                                            keep_batchnorm_fp32=keep_bn, world_size=self.world_size,
                                            scaler=self.scaler)
        self._position = 0

    def train_step(self, batch: Any) -> float:
        images, labels, *jitter = batch
        loss = float(self._step(self._input(images, *jitter), labels).asnumpy())
        self._position += int(getattr(self._step, "applied", True))
        return loss

    def global_step(self) -> int:
        """The optimizer's step counter: the LR array position (skipped overflow steps do not count).
        Kept on the host — reading the device counter every step would cost a sync."""
        return self._position

    def _read_position(self) -> int:
        return int(self.optimizer.global_step.asnumpy().reshape(-1)[0]) if self.optimizer is not None else 0

    def _train_mode(self) -> None:
        cell = getattr(self._step, "grad_step", self._step)
        if cell is not None:
            cell.set_train(True)

    # -- data ----------------------------------------------------------------------------------
    def steps_per_epoch(self, local: Path, data_cfg: DataConfig, batch_size: int, rank: int) -> int:
        return data.steps_per_epoch(local, data_cfg, batch_size, rank=rank, world_size=self.world_size,
                                    workers=self.data_workers)

    def epoch(self, local: Path, data_cfg: DataConfig, batch_size: int, *, size: int, rank: int, seed: int,
              epoch: int, skip: int = 0, limit: int = 0) -> tuple[Iterator[Any], int]:
        if self._input is None or self._input.cfg != data_cfg:  # one compiled stage for the whole run
            self._input = DeviceInput(data_cfg)
        return data.train_batches(local, data_cfg, batch_size, size=size, rank=rank, world_size=self.world_size,
                                  seed=data.epoch_seed(seed, epoch), workers=self.data_workers, skip=skip,
                                  limit=limit, device_jitter=self.device != "cpu")

    def predict(self, local: Path, data_cfg: DataConfig, split: str, batch_size: int, *, rank: int = 0,
                world_size: int = 1) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(float32 logits, labels) per batch over this rank's share of a split, in order (the whole split on
        one process); the net is in eval mode meanwhile."""
        import mindspore as ms

        self.net.set_train(False)
        try:
            for images, labels, real in data.eval_batches(local, data_cfg, split, batch_size, rank=rank,
                                                          world_size=world_size, workers=self.data_workers):
                logits = self.net(ms.Tensor(images)).asnumpy().astype(np.float32)
                yield logits[:real], labels
        finally:
            self._train_mode()

    def sum_over_ranks(self, values: np.ndarray) -> np.ndarray:
        """Element-wise sum of a small vector over all data-parallel ranks (identity on one process)."""
        if self.world_size == 1:
            return values
        import mindspore as ms

        if self._sum is None:
            from mindzoo.engine.mindspore.steps import SumOverRanks

            self._sum = SumOverRanks()
        return self._sum(ms.Tensor(values.astype(np.float32))).asnumpy().astype(np.float64)

    def file_ids(self, local: Path, split: str) -> list[str]:
        """The ``file_id`` of every record of a split, in evaluation order."""
        return data.file_ids(local, split)

    # -- weights ---------------------------------------------------------------------------------
    def save(self, folder: Path, *, optimizer: bool) -> None:
        import mindspore as ms

        from mindzoo.engine.mindspore.steps import optimizer_state

        folder.mkdir(parents=True, exist_ok=True)
        ms.save_checkpoint(self.net, str(folder / WEIGHTS))
        if optimizer and self.optimizer is not None:
            state = [{"name": p.name, "data": p} for p in optimizer_state(self.optimizer, self.net)]
            ms.save_checkpoint(state, str(folder / OPTIMIZER))

    def load(self, folder: Path, *, optimizer: bool, where: str) -> None:
        """Load weights (and optimizer state); refuse parameters that do not fit this network."""
        import mindspore as ms

        path = weights_file(folder)  # a torch-engine checkpoint holds model.safetensors with MindSpore names
        saved = ms.load_checkpoint(str(path), format="safetensors" if path.suffix == ".safetensors" else "ckpt")
        _check_fits(self.net, saved, where)
        ms.load_param_into_net(self.net, saved, strict_load=True)
        if optimizer and self.optimizer is not None and (folder / OPTIMIZER).is_file():
            from mindzoo.engine.mindspore.steps import optimizer_state

            state = ms.load_checkpoint(str(folder / OPTIMIZER))
            for param in optimizer_state(self.optimizer, self.net):
                if param.name in state:
                    param.set_data(state[param.name])
            self._position = self._read_position()

    def weights_digest(self) -> str:
        """sha256 over the trainable parameters (identical on every data-parallel rank)."""
        digest = hashlib.sha256()
        for param in sorted(self.net.trainable_params(), key=lambda p: p.name):
            digest.update(param.name.encode())
            digest.update(np.ascontiguousarray(param.asnumpy()).tobytes())
        return digest.hexdigest()


def _check_fits(net: Any, saved: dict[str, Any], where: str) -> None:
    params = {p.name: tuple(p.shape) for p in net.get_parameters()}
    missing = sorted(set(params) - set(saved))
    if missing:
        raise CheckpointMismatch(f"{where} does not fit this network: no parameter {missing[0]!r} "
                                 f"({len(missing)} missing)")
    for name, shape in params.items():
        got = tuple(saved[name].shape)
        if got != shape:
            raise CheckpointMismatch(f"{where} does not fit this network: {name} has shape {got}, expected {shape}")


class DeviceInput:
    """The training batches' last transforms (colour jitter, normalisation), run on the device by
    :class:`mindzoo.engine.mindspore.input_stage.InputStage`; float32 batches pass unchanged."""

    def __init__(self, cfg: DataConfig) -> None:
        self.cfg = cfg
        self.stages: dict[bool, Any] = {}

    def __call__(self, images: Any, jitter: Any = None) -> Any:
        import mindspore as ms

        if images.dtype != ms.uint8:
            return images
        jittered = jitter is not None
        if jittered not in self.stages:
            from mindzoo.engine.mindspore.input_stage import InputStage

            self.stages[jittered] = InputStage(self.cfg, jittered)
        return self.stages[jittered](images, jitter if jittered else images)
