"""Real runs to compare: the bundled digits, preprocessed, trained and evaluated by the real ``mindzoo``
steps (runtime environment) against the real local stack, as three "pipeline runs".

A pipeline run is what KFP does to the steps: every step of it gets the same
``$MINDZOO_PIPELINE_RUN_ID``. The full pipeline is exercised elsewhere; here the steps are
driven directly, which is all the MLflow layout depends on.

- ``a``: preprocess + train (seed 1) + evaluate — one parent, two children in the model's experiment;
- ``b``: train again with seed 2 — the re-run must land in the same experiment, under a new parent;
- ``c``: train with another learning rate (seed 1) — the comparison must show ``lr`` differing, not the seed.

Each run is GoogLeNet's CIFAR-10 recipe cut to CPU size (16 px, 2 epochs x 25 steps, batch 16),
enough to learn something in about 40 s. ``pipeline_runs(stack)`` runs them once per test
session and hands the same result to every module that asks (tests/runs, tests/browser).
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

BUCKET = "runs-compare"
TRAIN = ("--recipe", "googlenet_cifar10", "--input-size", "16", "--steps-per-epoch", "25",
         "--set", "epochs=2,batch_size=16,schedule.fractions=0.9,data.train.hflip=0,data.train.padding=0")
VARIANTS = {"a": "seed=1,schedule.base_lr=0.01", "b": "seed=2,schedule.base_lr=0.01",
            "c": "seed=1,schedule.base_lr=0.003"}
ENV = {"GLOG_v": "3", "ONEDNN_MAX_CPU_ISA": "AVX2"}


@dataclass(frozen=True)
class ComparedRuns:
    dataset_uri: str
    dataset_hash: str
    experiment: str  # mindzoo/googlenet/<hash[:12]>
    pipelines: dict[str, str]  # variant -> pipeline run id
    train_run_ids: dict[str, str]  # variant -> mindzoo --run-id (= the MLflow run name)


_made: dict[str, ComparedRuns] = {}


def pipeline_runs(stack) -> ComparedRuns:  # noqa: ANN001 - the conftest Stack
    key = str(stack.state_dir)
    if key not in _made:
        _made[key] = _make(stack)
    return _made[key]


def _make(stack) -> ComparedRuns:  # noqa: ANN001
    from minio import Minio

    from mindzoo.storage import MANIFEST, S3Uri, Storage

    Minio(stack.s3_endpoint, stack.access_key, stack.secret_key, secure=False).make_bucket(BUCKET)
    session = uuid.uuid4().hex[:8]
    pipelines = {v: f"kfp-{session}-{v}" for v in VARIANTS}
    raw = stack.state_dir / "runs-digits"
    stack.cli("datasets", "make-digits", str(raw), env="runtime")
    step(stack, pipelines["a"], "preprocess", "--source", str(raw), "--output", f"s3://{BUCKET}/datasets")
    prefix = next(k.rsplit("/", 1)[0] for k in Storage.connect().list(S3Uri(BUCKET, "datasets"))
                  if k.endswith(MANIFEST))
    dataset, digest = f"s3://{BUCKET}/{prefix}", prefix.rsplit("/", 1)[-1]
    run_ids = {v: f"cmp-{v}-{session}" for v in VARIANTS}

    def train(variant: str) -> None:
        step(stack, pipelines[variant], "train", "--dataset", dataset, "--output", f"s3://{BUCKET}/runs", *TRAIN,
             "--set", VARIANTS[variant], "--run-id", run_ids[variant])

    # Side by side: each process spends much of its time starting up and compiling graphs on one core.
    with ThreadPoolExecutor(len(VARIANTS)) as pool:
        list(pool.map(train, VARIANTS))
    step(stack, pipelines["a"], "evaluate", "--checkpoint", f"s3://{BUCKET}/runs/{run_ids['a']}/model",
         "--dataset", dataset)
    # The prefix names the content hash by its first 16 hex digits; the experiment by its first 12.
    return ComparedRuns(dataset, digest, f"mindzoo/googlenet/{digest[:12]}", pipelines, run_ids)


def step(stack, pipeline_run_id: str, *args: str):  # noqa: ANN001, ANN201
    """One real step in the runtime environment, as a task of pipeline run ``pipeline_run_id``."""
    return stack.cli(*args, env="runtime", timeout=400, extra_env={**ENV, "MINDZOO_PIPELINE_RUN_ID": pipeline_run_id})
