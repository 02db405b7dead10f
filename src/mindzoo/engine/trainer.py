"""The training loop (framework-neutral): epochs, eval cadence, best rule, checkpoints, NaN stop, logging.

The backend (``engine/<framework>/backend.py``) trains one batch, predicts,
saves and loads; this module decides *when*. Every rank runs the same loop on
its shard of the data; rank 0 alone writes checkpoints and tracking. Evaluation
is sharded too (each rank scores a disjoint part of the split and the counts
are summed), so all ranks reach the same best/NaN decisions and stay in step.

Resume: the newest published checkpoint restores weights, optimizer state (the
LR position is the optimizer's step counter), loss-scale and RNG state, best
metrics and history; the loop continues at the saved (epoch, step in epoch),
rebuilding that epoch's pipeline with the same seed and skipping the batches
already trained — so a run killed mid-epoch loses at most one checkpoint interval.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from mindzoo.engine import checkpoint as ckpt
from mindzoo.engine.evaluate import Evaluator
from mindzoo.engine.loss import loss_scale_plan
from mindzoo.engine.plan import TrainPlan
from mindzoo.engine.progress import Progress
from mindzoo.engine.schedules import lr_array, world_schedule
from mindzoo.errors import ConfigError, MindzooError, StorageError

__all__ = ["LoopState", "Trainer", "TrainingDiverged", "improves"]


# What a damaged or incomplete checkpoint raises while it is fetched, parsed or loaded (framework loaders
# raise their own RuntimeError/ValueError kinds). Resume then tries the next older one.
_UNREADABLE = (MindzooError, OSError, ValueError, RuntimeError, KeyError, TypeError)
FINAL_PUBLISH_TRIES = 3  # the final model is the step's output: worth more than one retry budget


class TrainingDiverged(MindzooError):
    """The loss became NaN or infinite."""


def improves(metrics: dict[str, float], best: dict[str, float] | None, rule: str) -> bool:
    """The recipe's best rule: ``top1`` (top-1 >= best) or ``top1_and_top5`` (both >=, SPPNet §1.3)."""
    if best is None:
        return True
    if rule == "top1_and_top5":
        return metrics["top1"] >= best["top1"] and metrics["top5"] >= best["top5"]
    return metrics["top1"] >= best["top1"]


@dataclass
class LoopState:
    epoch: int = 0  # epochs completed
    step_in_epoch: int = 0
    step: int = 0  # batches trained over the whole run
    best: dict[str, float] | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    last_checkpoint: str = ""
    epoch_loss: tuple[float, int] = (0.0, 0)  # (sum, count) of the current epoch's losses, for a resume


class Trainer:
    def __init__(self, backend: Any, plan: TrainPlan, cfg: Any, *, rank: int, world_size: int,
                 store: ckpt.CheckpointStore | None, tracker: Any, say: Callable[[str], None]) -> None:
        self.backend, self.plan, self.cfg, self.recipe = backend, plan, cfg, plan.recipe
        self.rank, self.world = rank, world_size
        self.store = store if rank == 0 else None
        self.reader = store  # every rank reads the resume checkpoint
        self.tracker, self.say = tracker, say
        self.warn: Callable[[str], None] = _warn if rank == 0 else (lambda line: None)
        self.unpublished_best: Path | None = None  # a best checkpoint saved while the store was down
        self.state = LoopState()
        self.work = Path(tempfile.mkdtemp(prefix="mindzoo-train-"))
        self.eval_batch = self.recipe.eval.batch_size or self.recipe.batch_size
        self.compiled = False

    # -- set-up ------------------------------------------------------------------------------
    def prepare(self) -> None:
        spe = self.backend.steps_per_epoch(self.plan.local_data, self.plan.data_cfg, self.recipe.batch_size,
                                           self.rank)
        if spe == 0:
            raise MindzooError(f"the train split has fewer than {self.recipe.batch_size * self.world} images: "
                               "lower --set batch_size")
        self.spe = min(spe, self.cfg.steps_per_epoch) if self.cfg.steps_per_epoch else spe
        self.total = self.spe * self.recipe.epochs
        schedule, lr_line = world_schedule(self.recipe, self.world)
        self.say(lr_line)  # the rate actually used, before anything trains (the recipe's rule may scale it)
        self.lr = lr_array(schedule, epochs=self.recipe.epochs, steps_per_epoch=self.spe)
        self.backend.seed(self.recipe.seed)  # the same on every rank: initial weights are not broadcast
        try:
            self.backend.build_model(self.plan.model, num_classes=self.recipe.num_classes,
                                     input_size=self.plan.input_size, **self.plan.model_kwargs)
        except ConfigError as err:  # the builder names its own keys (model.input_size): ours are train.*
            raise ConfigError(f"train.{err.key.removeprefix('model.')}", err.problem) from None
        self._fine_tuning()
        self.backend.setup_training(self.recipe, self.lr, loss_scale_plan(self.recipe.loss_scale))

    def _fine_tuning(self) -> None:
        """``--freeze backbone`` / ``--head-lr-mult``: the head is every parameter whose shape follows the class
        count (asked of the network, so no per-model list). Frozen BatchNorm statistics still update."""
        freeze, mult = getattr(self.cfg, "freeze", "none"), float(getattr(self.cfg, "head_lr_mult", 1.0))
        if freeze == "none" and mult == 1.0:
            return
        heads = self.backend.head_names()
        if freeze == "backbone":
            self.backend.freeze(set(self.backend.param_shapes()) - heads)
            self.say(f"backbone frozen: training only {', '.join(sorted(heads))}")
        if mult != 1.0:
            self.backend.lr_mult = {name: mult for name in heads}
            self.say(f"head LR x{mult:g}: {', '.join(sorted(heads))}")

    def initialise(self, source: Any) -> Any:
        """Load a :class:`mindzoo.engine.weights.WeightSource` into the fresh network (weights only)."""
        from mindzoo.engine import weights

        fitted = weights.fit(source.arrays, model=self.plan.model, shapes=self.backend.param_shapes(),
                             heads=self.backend.head_names(), num_classes=self.recipe.num_classes, where=source.uri,
                             strict=bool(getattr(self.cfg, "strict", False)))
        self.backend.assign(fitted.arrays)
        self.say(weights.describe(fitted, source))
        return fitted

    def resume(self) -> bool:
        """Load the newest readable published checkpoint, if any; True when resumed.

        A checkpoint that cannot be fetched or loaded (damaged, or missing a file a resume needs) is
        skipped with a warning and the next older one is tried: losing an interval beats a run that
        cannot go on. A checkpoint of another model is no damage: that is refused.
        """
        if self.reader is None:
            return False
        skipped: list[str] = []
        for name, meta in self.reader.newest_first(skipped):
            where = str(self.reader.uri(name))
            ckpt.check_identity(meta.get("identity", {}), model=self.plan.model, num_classes=self.recipe.num_classes,
                                where=where)
            try:
                saved = self._load_resume_point(name, where)
            except _UNREADABLE as err:
                skipped.append(f"{where} ({ckpt.first_line(err)})")
                continue
            self._say_skipped(skipped, f"resuming from the newest good one, {where}")
            self._restore(saved, where)
            return True
        self._say_skipped(skipped, "no readable checkpoint is left: training from the start")
        return False

    def _load_resume_point(self, name: str, where: str) -> dict[str, Any]:
        folder = self.reader.fetch(name, self.work / f"resume-{self.rank}")
        missing = [f for f, there in ((ckpt.WEIGHTS, ckpt.weights_file(folder).is_file()),
                                      (ckpt.OPTIMIZER, any((folder / o).is_file() for o in
                                                           (ckpt.OPTIMIZER, ckpt.OPTIMIZER_SAFETENSORS))),
                                      (ckpt.STATE, (folder / ckpt.STATE).is_file())) if not there]
        if missing:
            raise MindzooError(f"incomplete: no {', '.join(missing)}")
        saved = ckpt.read_json(folder / ckpt.STATE)
        self.backend.load(folder, optimizer=True, where=where)
        return saved

    def _say_skipped(self, skipped: list[str], outcome: str) -> None:
        if skipped:
            self.warn(f"skipped unreadable checkpoint(s) {'; '.join(skipped)}; {outcome}")

    def _restore(self, saved: dict[str, Any], where: str) -> None:
        self.state = LoopState(**{k: saved[k] for k in asdict(LoopState()) if k in saved})
        self.state.epoch_loss = tuple(self.state.epoch_loss)
        self.state.last_checkpoint = where
        if saved.get("loss_scale") and self.backend.scaler is not None:
            self.backend.scaler.load_state_dict(saved["loss_scale"])
        if saved.get("rng"):
            self.backend.set_rng_state(saved["rng"])
        if self.state.step_in_epoch >= self.spe:
            self.state.epoch, self.state.step_in_epoch = self.state.epoch + 1, 0
        self.say(f"resumed from {self.state.last_checkpoint}: epoch {self.state.epoch + 1}, "
                 f"step {self.state.step_in_epoch}/{self.spe} of it ({self.state.step}/{self.total} in all)")

    # -- the loop ------------------------------------------------------------------------------
    def fit(self) -> LoopState:
        epochs = self.recipe.epochs
        while self.state.epoch < epochs:
            epoch = self.state.epoch
            size = self.plan.train_sizes[epoch % len(self.plan.train_sizes)]
            record = self._train_epoch(epoch, size)
            self.state.epoch, self.state.step_in_epoch = epoch + 1, 0
            last = epoch + 1 == epochs
            if self.plan.has_val and (self._eval_due(epoch, size) or (last and self.cfg.final_eval)):
                record.update(self._evaluate_and_keep_best(epoch))
            self.state.history.append(record)
            self._log_epoch(record)
            every = self.recipe.checkpoint.every_epochs
            if every and (epoch + 1) % every == 0 and not last:
                self._checkpoint()
        return self.state

    def _eval_due(self, epoch: int, size: int) -> bool:
        every = self.recipe.eval.every_epochs
        # Multi-size (SPPNet): only epochs trained at the first size are evaluated (§1.3).
        return bool(every) and (epoch + 1) % every == 0 and size == self.plan.train_sizes[0]

    def _train_epoch(self, epoch: int, size: int) -> dict[str, float]:
        skip = self.state.step_in_epoch
        batches, _ = self.backend.epoch(self.plan.local_data, self.plan.data_cfg, self.recipe.batch_size,
                                            size=size, rank=self.rank, seed=self.recipe.seed, epoch=epoch,
                                            skip=skip, limit=self.spe)
        progress = Progress(self, epoch, skip)
        started, step_times = time.monotonic(), []
        loss_sum, loss_count = self.state.epoch_loss if skip else (0.0, 0)
        tick = time.monotonic()
        for batch in batches:
            position = self.backend.global_step()
            loss = self.backend.train_step(batch)
            self.state.step += 1
            self.state.step_in_epoch += 1
            now = time.monotonic()
            if self.compiled:  # the first step compiles the graph; it is not a step time
                step_times.append(now - tick)
            self.compiled = True
            if not math.isfinite(loss):
                self._diverged(loss, epoch)
            loss_sum, loss_count = loss_sum + loss, loss_count + 1
            self.state.epoch_loss = (loss_sum, loss_count)
            lr = float(self.lr[min(position, len(self.lr) - 1)])
            if self.rank == 0:
                self.tracker.log_metrics({"train/loss": loss, "train/lr": lr}, step=self.state.step)
            progress.update(loss, lr)
            if self.cfg.checkpoint_every_steps and self.state.step % self.cfg.checkpoint_every_steps == 0 \
                    and self.state.step_in_epoch < self.spe:
                self._checkpoint()
            tick = time.monotonic()
        progress.close()
        self.state.epoch_loss = (0.0, 0)
        mean = loss_sum / loss_count if loss_count else float("nan")
        return self._epoch_record(epoch, size, time.monotonic() - started, step_times, mean)

    def _epoch_record(self, epoch: int, size: int, seconds: float, step_times: list[float],
                      mean_loss: float) -> dict[str, float]:
        record = {"epoch": epoch + 1, "train/input_size": size, "perf/epoch_s": seconds, "train/epoch_loss": mean_loss}
        if step_times:
            step_s = float(np.mean(step_times))
            record.update({"perf/step_ms": step_s * 1000,
                           "perf/img_per_s": self.recipe.batch_size * self.world / step_s})
        return record

    def _diverged(self, loss: float, epoch: int) -> None:
        kept = (f"the last good checkpoint is {self.state.last_checkpoint}" if self.state.last_checkpoint
                else "no checkpoint was published yet")
        raise TrainingDiverged(f"loss is {loss} at step {self.state.step} (epoch {epoch + 1}); training stopped, "
                               f"{kept}")

    # -- evaluation ----------------------------------------------------------------------------
    def evaluate(self) -> dict[str, float]:
        evaluator = Evaluator(self.recipe.num_classes, max_misclassified=0)
        for logits, labels in self.backend.predict(self.plan.local_data, self.plan.data_cfg, "val", self.eval_batch,
                                                   rank=self.rank, world_size=self.world):
            evaluator.update(logits, labels)
        counts = np.array([evaluator.loss_sum, evaluator.top1, evaluator.top5, evaluator.seen], np.float64)
        loss_sum, top1, top5, seen = self.backend.sum_over_ranks(counts)
        seen = max(seen, 1.0)
        return {"eval/top1": top1 / seen, "eval/top5": top5 / seen, "eval/loss": loss_sum / seen,
                "eval/images": seen}

    def _evaluate_and_keep_best(self, epoch: int) -> dict[str, float]:
        started = time.monotonic()
        metrics = self.evaluate()
        metrics["perf/eval_s"] = time.monotonic() - started
        plain = {"top1": metrics["eval/top1"], "top5": metrics["eval/top5"]}
        if improves(plain, self.state.best, self.recipe.eval.best):
            self.state.best = {**plain, "epoch": epoch + 1}
            self._publish_best()
        return metrics

    # -- checkpoints -------------------------------------------------------------------------------
    def _state_json(self) -> dict[str, Any]:
        state = asdict(self.state)
        state.update(lr_position=self.backend.global_step(), world_size=self.world, spe=self.spe,
                     rng=self.backend.rng_state(),
                     loss_scale=self.backend.scaler.state_dict() if self.backend.scaler is not None else None)
        return state

    def _publish(self, name: str, *, optimizer: bool, keep: int | None = None) -> str:
        """Save and publish checkpoint ``name``; raises StorageError when the store stays unreachable."""
        if self.store is None:
            return ""
        folder = self._save(name, optimizer=optimizer)
        uri = self._upload(folder, name, keep)
        shutil.rmtree(folder, ignore_errors=True)
        return uri

    def _save(self, name: str, *, optimizer: bool) -> Path:
        folder = self.work / f"save-{name}"
        shutil.rmtree(folder, ignore_errors=True)
        self.backend.save(folder, optimizer=optimizer)
        state = self._state_json()
        ckpt.write_folder(folder, self.plan.identity(), state)
        small = {k: state[k] for k in ("epoch", "step", "step_in_epoch", "best", "lr_position")}
        last = self.state.history[-1] if self.state.history else {}
        (folder.parent / f"{name}.meta.json").write_text(json.dumps(
            {"state": small, "identity": self.plan.identity(), "final": last}))
        return folder

    def _upload(self, folder: Path, name: str, keep: int | None) -> str:
        meta = json.loads((folder.parent / f"{name}.meta.json").read_text())
        uri = self.store.uri(name)
        self.store.storage.publish(folder, uri, meta=meta)
        if keep is not None:
            try:
                self.store.prune(keep, protect=name)
            except StorageError as err:  # the new checkpoint is safe; older ones go at the next prune
                self.warn(f"could not prune older checkpoints ({err})")
        return str(uri)

    def _publish_best(self) -> None:
        """The best checkpoint; while the store is down it is kept locally and retried at the next
        checkpoint and at the end (the weights move on, so they cannot be saved again later)."""
        if self.store is None:
            return
        folder = self._save("best", optimizer=False)
        self.unpublished_best = folder
        self._retry_best()

    def _retry_best(self) -> None:
        if self.unpublished_best is None:
            return
        try:
            self._upload(self.unpublished_best, "best", None)
        except StorageError as err:
            self.warn(f"best checkpoint (epoch {(self.state.best or {}).get('epoch')}) not published yet: {err}; "
                      "training goes on and retries at the next checkpoint")
            return
        shutil.rmtree(self.unpublished_best, ignore_errors=True)
        self.unpublished_best = None

    def _checkpoint(self) -> None:
        """A periodic checkpoint. An upload that fails past the storage retry budget is a warning: the
        step keeps training and publishes the next one at the next interval (a resume then loses more)."""
        prefix = self.recipe.checkpoint.prefix.replace("{rank}", str(self.rank))
        name = f"{prefix}-{self.state.epoch + (1 if self.state.step_in_epoch else 0)}_{self.state.step}"
        try:
            uri = self._publish(name, optimizer=True, keep=self.recipe.checkpoint.keep)
        except StorageError as err:
            shutil.rmtree(self.work / f"save-{name}", ignore_errors=True)
            self.warn(f"checkpoint {name} (step {self.state.step}) not published: {err}; training goes on and "
                      "tries again at the next interval")
            return
        if uri:
            self.state.last_checkpoint = uri
            self.say(f"checkpoint {uri} (step {self.state.step})")
        self._retry_best()  # the store answers again: a best checkpoint saved during an outage goes up now

    def publish_final(self) -> str:
        """The final weights: the step fails only if these cannot be published (tried a few retry budgets)."""
        self._retry_best()
        for attempt in range(1, FINAL_PUBLISH_TRIES + 1):
            try:
                return self._publish("model", optimizer=False)
            except StorageError as err:
                if attempt == FINAL_PUBLISH_TRIES:
                    raise StorageError(f"the final model could not be published after {attempt} tries: {err}"
                                       + (f"; the last checkpoint is {self.state.last_checkpoint}"
                                          if self.state.last_checkpoint else "")) from None
                self.warn(f"final model not published yet ({err}); trying again")
                time.sleep(5.0 * attempt)
        return ""

    # -- logging ---------------------------------------------------------------------------------
    def _log_epoch(self, record: dict[str, float]) -> None:
        epoch = int(record["epoch"])
        if self.rank == 0:
            self.tracker.log_metrics({k: v for k, v in record.items() if "/" in k and math.isfinite(v)}, step=epoch)
        parts = [f"epoch {epoch}/{self.recipe.epochs}", f"loss {record['train/epoch_loss']:.4f}"]
        if "eval/top1" in record:
            parts.append(f"top-1 {record['eval/top1']:.4f} top-5 {record['eval/top5']:.4f} "
                         f"eval loss {record['eval/loss']:.4f}")
        if "perf/img_per_s" in record:
            parts.append(f"{record['perf/img_per_s']:.1f} img/s")
        parts.append(f"{record['perf/epoch_s']:.1f}s")
        self.say(", ".join(parts))

    def cleanup(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)


def _warn(line: str) -> None:
    print(f"warning: {line}", file=sys.stderr, flush=True)
