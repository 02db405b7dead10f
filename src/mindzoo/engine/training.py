"""One training run end to end, as ``mindzoo train`` runs it in every process role.

- scheduler (``MS_ROLE=MS_SCHED``): join the cluster and end with it;
- launcher (``--workers N`` outside a cluster): check the inputs, start the
  scheduler and N workers (:mod:`.distributed`), check they agree, pass rank 0's
  outputs on;
- worker or single process: plan, build, resume, train, publish, track.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from mindzoo.engine import checkpoint as ckpt
from mindzoo.engine import distributed
from mindzoo.engine.plan import TrainPlan, plan_training, tracking_params
from mindzoo.errors import MindzooError
from mindzoo.lease import RunLease

__all__ = ["launch", "run_scheduler", "train"]

ENV_LOCAL_WORKERS = "MINDZOO_LOCAL_WORKERS"
ENV_LEASE_HELD = "MINDZOO_RUN_LEASE_HELD"  # set by the --workers launcher, which holds the run's lease itself


def run_scheduler(cfg: Any) -> None:
    from mindzoo.engine import create_backend

    create_backend(device=cfg.device, mode=cfg.mode).start()  # returns only if MindSpore does


def launch(cfg: Any, ctx: Any) -> None:
    """``--workers N`` on one machine: the same command as 1 scheduler + N worker processes."""
    plan = plan_training(cfg, ctx.storage)  # fail fast on bad inputs; fetches the dataset once for all ranks
    _check_same_run(_run_record(ctx.storage, plan), plan.settings(None, None), plan)
    cfg = replace(cfg, run_id=plan.run_id)
    from mindzoo.config import StorageConfig, TrackingConfig, TrainConfig

    argv = ["train", *to_argv(TrainConfig, cfg), *to_argv(StorageConfig, ctx.storage_cfg, "storage"),
            *to_argv(TrackingConfig, ctx.tracking_cfg, "tracking")]
    launch_local = distributed.launch_local
    if cfg.engine == "torch":  # torchrun instead of MindSpore's scheduler + workers; the same results
        from mindzoo.engine.torch.launch import launch_local
    with RunLease(ctx.storage, plan.run_prefix, plan.run_id):  # the workers' rank 0 then takes none
        results = launch_local(argv, cfg.workers, say=ctx.say,
                               env={ENV_LOCAL_WORKERS: str(cfg.workers), ENV_LEASE_HELD: "1"})
    digests = {r.get("weights_sha256") for r in results}
    if len(digests) != 1 or None in digests:
        raise MindzooError(f"data-parallel ranks ended with different weights: {sorted(map(str, digests))}")
    ctx.kfp.relay(results[0].get("artifacts", {}))
    ctx.say(f"{cfg.workers} workers finished with identical weights (sha256 {digests.pop()[:12]})")


def to_argv(cls: type, cfg: Any, prefix: str = "") -> list[str]:
    """The CLI flags that rebuild ``cfg`` (the inverse of configkit's flags)."""
    from mindzoo.configkit import iter_flags

    argv: list[str] = []
    for spec in iter_flags(cls, prefix=f"{prefix}." if prefix else ""):
        value: Any = cfg
        for part in spec.key.split(".")[1 if prefix else 0:]:
            value = getattr(value, part)
        if isinstance(value, bool):
            argv.append(spec.flag if value else f"--no-{spec.flag[2:]}")
        elif isinstance(value, tuple):
            for item in value:
                argv += [spec.flag, str(item)]
        elif value not in ("", None):
            argv += [spec.flag, str(value)]
    return argv


def train(cfg: Any, ctx: Any) -> None:
    """One process's share of a run (the whole run on one process)."""
    from mindzoo.engine import create_backend

    plan = plan_training(cfg, ctx.storage)
    if not plan.has_val:
        ctx.say(f"dataset {plan.dataset.get('name')} has no validation split (--train-only): no evaluation, "
                "no best checkpoint; evaluate it with --split train or a dataset that has val")
    local = int(os.environ.get(ENV_LOCAL_WORKERS, "1"))
    backend = create_backend(cfg.engine, device=cfg.device, mode=cfg.mode, threads=cfg.threads,
                             data_workers=cfg.data_workers, local_processes=local)
    record = _run_record(ctx.storage, plan)
    _check_same_run(record, plan.settings(None, None), plan)  # before the framework starts
    store = ckpt.CheckpointStore(ctx.storage, plan.run_prefix)
    finished = store.read_meta("model")
    # One writer per run folder (mindzoo.lease.RunLease). A lone process takes the run's lease before the
    # framework starts, so a second one is refused at once; in a cluster rank 0 takes it (_train), and under
    # local --workers the launcher holds it for its ranks.
    alone = finished is None and not distributed.in_cluster(cfg.engine) and ENV_LEASE_HELD not in os.environ
    lease = RunLease(ctx.storage, plan.run_prefix, plan.run_id).acquire() if alone else None
    try:
        # A cluster member joins even a finished run's cluster, so the scheduler and the other ranks end too.
        rt = backend.start() if finished is None or distributed.in_cluster(cfg.engine) else None
        if finished is not None:
            ctx.say(f"run {plan.run_id} already finished: {store.uri('model')}")
            _outputs(ctx, plan, store, finished.get("state", {}), finished.get("final", {}), rt.rank if rt else 0,
                     backend=None)
            return
        _train(cfg, ctx, plan, backend, rt, store, record, lease_held=alone)
    finally:
        if lease is not None:
            lease.release()


def _train(cfg: Any, ctx: Any, plan: TrainPlan, backend: Any, rt: Any, store: ckpt.CheckpointStore,
           record: dict[str, Any], *, lease_held: bool) -> None:
    from mindzoo.engine.trainer import Trainer
    from mindzoo.tracking import NullTracker

    tracker: Any = NullTracker()
    trainer = Trainer(backend, plan, cfg, rank=rt.rank, world_size=rt.world_size, store=store, tracker=tracker,
                      say=ctx.say if rt.rank == 0 else (lambda line: None))
    lease = RunLease(ctx.storage, plan.run_prefix, plan.run_id) \
        if rt.rank == 0 and not lease_held and ENV_LEASE_HELD not in os.environ else None
    try:
        if lease is not None:
            lease.acquire()
        _until_stopped()
        trainer.prepare()
        settings = plan.settings(trainer.spe, rt.world_size)
        _check_same_run(record, settings, plan)
        plan = trainer.plan = replace(plan, init_from=_initialise(cfg, ctx, trainer, record, rt.rank))
        if rt.rank == 0:
            trainer.tracker = _tracking(ctx, plan, cfg, rt, record)
            _write_run_record(ctx.storage, plan, settings, trainer.tracker.run_id)
        ctx.say(f"{plan.model} ({plan.recipe.name}) at {plan.input_size}px on {cfg.device} x{rt.world_size}: "
                f"{plan.recipe.epochs} epochs x {trainer.spe} steps, batch {plan.recipe.batch_size}/rank -> "
                f"{plan.run_prefix}")
        trainer.resume()
        earlier = len(trainer.state.history)  # epochs trained before a resume: their time counts in the cost
        state = trainer.fit()
        final = trainer.state.history[-1] if trainer.state.history else {}
        model_uri = trainer.publish_final()
        if rt.rank == 0:
            _log_summary(ctx, trainer, plan, rt.world_size, earlier)
            _final_artifacts(trainer, plan)
        _outputs(ctx, plan, store, {"step": state.step, "epoch": state.epoch, "best": state.best}, final,
                 rt.rank, backend=backend, model_uri=model_uri)
    finally:
        if lease is not None:
            lease.release()
        trainer.cleanup()


def _until_stopped() -> None:
    """SIGTERM (a pod being deleted or evicted) ends the step like an error does, so the step's clean-up
    runs: the run lease is released and tracking calls MLflow never got are spilled to a file."""
    import signal
    import threading

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)


def _initialise(cfg: Any, ctx: Any, trainer: Any, record: dict[str, Any], rank: int) -> dict[str, Any]:
    """``--init-from``: load the weights into the fresh network, unless the run resumes (its checkpoint wins);
    returns what run.json, MLflow and the model card record about the source."""
    if not getattr(cfg, "init_from", ""):
        return {}
    if trainer.reader is not None and trainer.reader.latest() is not None:
        return record.get("identity", {}).get("init_from") or {"uri": cfg.init_from}
    from mindzoo.endpoints import resolve_tracking_uri
    from mindzoo.engine import weights

    tracking = resolve_tracking_uri(ctx.tracking_cfg) if cfg.init_from.startswith("models:/") else None
    source = weights.fetch(cfg.init_from, ctx.storage, trainer.work / f"init-{rank}", tracking)
    fitted = trainer.initialise(source)
    return {**source.record(), "names": fitted.names, "reinitialised": fitted.reinitialised}


def _tracking(ctx: Any, plan: TrainPlan, cfg: Any, rt: Any, record: dict[str, Any]) -> Any:
    from mindzoo.engine.runlog import open_tracking

    tags = {"mindzoo.run_id": plan.run_id, "mindzoo.output": str(plan.run_prefix), "dataset_uri": plan.dataset_uri,
            "model": plan.model}
    return open_tracking(ctx, plan.experiment, plan.run_id, tracking_params(plan, cfg, rt.world_size), tags,
                         record.get("mlflow_run_id"))


def _log_summary(ctx: Any, trainer: Any, plan: TrainPlan, world_size: int, earlier: int) -> None:
    import time

    from mindzoo.engine.runlog import run_summary

    best = (trainer.state.best or {}).get("epoch")
    trainer.tracker.log_metrics(run_summary(trainer.state.history, earlier_epochs=earlier, world_size=world_size,
                                            global_batch=plan.recipe.batch_size * world_size,
                                            attempt_s=time.monotonic() - ctx.started, best_epoch=best))


def _run_record(storage: Any, plan: TrainPlan) -> dict[str, Any]:
    uri = plan.run_prefix.join("run.json")
    return json.loads(storage.get_bytes(uri)) if storage.exists(uri) else {}


def _check_same_run(record: dict[str, Any], settings: dict[str, Any], plan: TrainPlan) -> None:
    """A run id names one training: refuse to resume it with another model, recipe or data."""
    before = record.get("settings")
    if not before:
        return
    if before.get("model") != settings["model"]:
        raise ckpt.CheckpointMismatch(f"run {plan.run_id} at {plan.run_prefix} trains {before.get('model')!r}, "
                                      f"not {settings['model']!r}; use another --run-id")
    later = {k for k in ("steps_per_epoch", "world_size") if settings.get(k) is None}  # known once built
    changed = [k for k in sorted(set(before) | set(settings)) if k not in later and before.get(k) != settings.get(k)]
    if changed:
        key = changed[0]
        raise MindzooError(f"run {plan.run_id} was started with {key}={before.get(key)!r}, now {settings.get(key)!r}; "
                           "resume it with the same settings or use another --run-id")


def _write_run_record(storage: Any, plan: TrainPlan, settings: dict[str, Any], mlflow_run_id: str | None) -> None:
    body = {"run_id": plan.run_id, "identity": plan.identity(), "settings": settings,
            "mlflow_run_id": mlflow_run_id, "recipe_source": plan.recipe_source}
    storage.put_bytes(json.dumps(body, indent=2, sort_keys=True).encode(), plan.run_prefix.join("run.json"),
                      "application/json")


def _final_artifacts(trainer: Any, plan: TrainPlan) -> None:
    """Recipe YAML, curves, summary and the best checkpoint into the MLflow run."""
    import shutil

    import yaml

    from mindzoo.engine import plots
    from mindzoo.recipes import to_flat_dict as recipe_flat

    folder = Path(tempfile.mkdtemp(prefix="mindzoo-artifacts-"))
    recipe = {k: list(v) if isinstance(v, tuple) else v for k, v in recipe_flat(plan.recipe).items()}
    (folder / "recipe.yaml").write_text(yaml.safe_dump(_nest(recipe), sort_keys=False))
    history = trainer.state.history
    epochs = [h["epoch"] for h in history]
    plots.line_chart({"train loss": (epochs, [h["train/epoch_loss"] for h in history]),
                      "eval loss": (epochs, [h.get("eval/loss", float("nan")) for h in history])},
                     folder / "loss.png", title=f"{plan.model}: loss", xlabel="epoch")
    plots.line_chart({"top-1": (epochs, [h.get("eval/top1", float("nan")) for h in history]),
                      "top-5": (epochs, [h.get("eval/top5", float("nan")) for h in history])},
                     folder / "accuracy.png", title=f"{plan.model}: accuracy", xlabel="epoch")
    steps = list(range(1, trainer.total + 1))
    plots.line_chart({"lr": (steps, [float(v) for v in trainer.lr])}, folder / "lr.png",
                     title=f"{plan.model}: learning rate ({plan.recipe.schedule.kind})", xlabel="step")
    (folder / "history.json").write_text(json.dumps(history, indent=2))
    trainer.tracker.log_artifact(folder / "recipe.yaml")
    for name in ("loss.png", "accuracy.png", "lr.png", "history.json"):
        trainer.tracker.log_artifact(folder / name, "curves")
    if trainer.state.best is not None and trainer.store is not None:
        best = trainer.unpublished_best or trainer.store.fetch("best", folder / "best")
        trainer.tracker.log_artifact(ckpt.weights_file(best), "best")
        trainer.tracker.log_artifact(best / ckpt.IDENTITY, "best")
    trainer.tracker.drain()  # delivered (or buffered with the files still needed: then keep them)
    if not trainer.tracker.buffered:
        shutil.rmtree(folder, ignore_errors=True)


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _outputs(ctx: Any, plan: TrainPlan, store: ckpt.CheckpointStore, state: dict[str, Any], final: dict[str, float],
             rank: int, *, backend: Any, model_uri: str = "") -> None:
    """KFP outputs (``model``: the published final weights; ``metrics``) and the launcher's result file."""
    model_uri = model_uri or str(store.uri("model"))
    best = state.get("best") or {}
    metrics = {k.split("/", 1)[1]: v for k, v in final.items() if k.startswith("eval/") and k != "eval/images"}
    metrics.update({"steps": state.get("step", 0), "epochs": state.get("epoch", 0)})
    if "train/epoch_loss" in final:
        metrics["train_loss"] = final["train/epoch_loss"]
    identity = {k: v for k, v in plan.identity().items() if k != "classes"}
    meta = {**identity, "best_uri": str(store.uri("best")) if best else "",
            "best_top1": best.get("top1"), "mlflow_run_id": getattr(ctx.tracker, "run_id", None),
            "framework": plan.engine}
    meta = {k: v for k, v in meta.items() if v not in (None, "")}
    artifacts = {"checkpoint": {"uri": model_uri, "metadata": meta}, "metrics": {"uri": "", "metadata": metrics}}
    if rank == 0:
        ctx.kfp.relay(artifacts)
        ctx.say(f"model: {model_uri} " + " ".join(f"{k}={v:.4g}" for k, v in metrics.items()
                                                  if isinstance(v, float)))
    digest = backend.weights_digest() if backend is not None else "finished-before"
    distributed.write_result({"rank": rank, "weights_sha256": digest, "steps": state.get("step", 0),
                              "artifacts": artifacts if rank == 0 else {}})
