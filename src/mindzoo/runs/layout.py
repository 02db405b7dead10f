"""The MLflow layout: experiment, run, parameter, metric, tag and artifact names, in one place.

``docs/mlflow.md`` documents it (a test checks that every name here appears there).

- One experiment per (model, dataset): ``mindzoo/<model>/<dataset hash[:12]>``. Preprocess does
  not know the model yet: its runs go to ``mindzoo/datasets``, linked by the ``dataset_hash``
  param and the ``pipeline_run_id`` tag.
- One parent run per pipeline run (tags ``pipeline_run_id``, ``mindzoo.kind=pipeline``), found or
  created by the first step of that pipeline run to log into the experiment; each step's run is
  its child (``mlflow.parentRunId``). Without ``$MINDZOO_PIPELINE_RUN_ID`` a step's run is top-level.

Imported by the steps in the runtime environment: standard library only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from mindzoo.errors import ConfigError

EXPERIMENT_ROOT = "mindzoo"
DATASETS_EXPERIMENT = "mindzoo/datasets"
UNLINKED_EXPERIMENT = "mindzoo/unlinked"  # a run whose model is unknown (e.g. infer on a bare .mindir)
UNKNOWN_DATA = "unknown-data"
HASH_CHARS = 12

# The KFP run a step belongs to. On a KFP backend the task pod gets it from its `pipeline/runid` label
# (pipelines/tasks.py, kfp-kubernetes' field path): the backend resolves `{{$.pipeline_job_uuid}}` only
# as a task input's value, and an input would make KFP's cache key differ in every run. kfp.local
# ignores kfp-kubernetes settings but resolves the placeholder in the command line, which passes it
# as ENV_LOCAL_PIPELINE_RUN_ID (components/common.py): the label's value wins when both are there.
ENV_PIPELINE_RUN_ID = "MINDZOO_PIPELINE_RUN_ID"
ENV_LOCAL_PIPELINE_RUN_ID = "MINDZOO_LOCAL_PIPELINE_RUN_ID"
ENV_GIT_SHA = "MINDZOO_GIT_SHA"
ENV_IMAGE = "MINDZOO_IMAGE"  # the image's own name:version (set in each Dockerfile)
# The digest of the image the step runs in. Set by whoever starts the container and knows it: run-local
# (the local image's ID), the distributed launcher (the digest its worker image reference is pinned to).
ENV_IMAGE_DIGEST = "MINDZOO_IMAGE_DIGEST"
# ``<name:version>=sha256:...`` pairs, comma-separated: the digests a compiled pipeline pinned its images to
# (``components/images.py``); a step takes its own image's entry, by ``$MINDZOO_IMAGE``.
ENV_IMAGE_DIGESTS = "MINDZOO_IMAGE_DIGESTS"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")

# Steps whose runs nest under the pipeline run's parent (preprocess logs before the model is known).
NESTED_STEPS = frozenset({"train", "evaluate", "export", "infer"})


class Tag:
    PIPELINE_RUN_ID = "pipeline_run_id"
    GIT_SHA = "git_sha"
    IMAGE = "image"
    IMAGE_DIGEST = "image_digest"  # the sha256 digest of the image the step ran in
    STEP = "mindzoo.step"  # preprocess | train | evaluate | export | infer
    KIND = "mindzoo.kind"  # pipeline (a parent) | step
    TRAIN_RUN_ID = "mindzoo.run_id"  # train's --run-id: names <output>/<run id> in MinIO
    RESUMED = "mindzoo.resumed"
    PARENT = "mlflow.parentRunId"  # MLflow's own: the UI nests the run under its parent
    RUN_NAME = "mlflow.runName"


KIND_PIPELINE = "pipeline"
KIND_STEP = "step"

PIPELINE_TAG_ENV = {Tag.PIPELINE_RUN_ID: ENV_PIPELINE_RUN_ID, Tag.GIT_SHA: ENV_GIT_SHA, Tag.IMAGE: ENV_IMAGE}


class Param:
    MODEL = "model"
    ENGINE = "engine"
    DEVICE = "device"
    WORLD_SIZE = "world_size"
    BATCH_SIZE = "batch_size"  # per device; global_batch_size = batch_size x world_size
    GLOBAL_BATCH_SIZE = "global_batch_size"
    LR = "lr"
    EPOCHS = "epochs"
    DATASET_HASH = "dataset_hash"
    RECIPE = "recipe"  # the recipe's name or file
    RECIPE_PREFIX = "recipe."  # the flattened recipe: recipe.optim.weight_decay, recipe.seed, ...
    # Every step's own flags are logged as <step>.<flag>: evaluate.split, export.batch_size, infer.max_images.


class Metric:
    # train, per step (x axis: global step)
    TRAIN_LOSS = "train/loss"
    TRAIN_LR = "train/lr"
    # train, per epoch (x axis: epoch)
    TRAIN_EPOCH_LOSS = "train/epoch_loss"
    TRAIN_INPUT_SIZE = "train/input_size"
    EVAL_TOP1 = "eval/top1"
    EVAL_TOP5 = "eval/top5"
    EVAL_LOSS = "eval/loss"
    EVAL_IMAGES = "eval/images"
    EVAL_CLASS_ACC_PREFIX = "eval/class_acc/"  # evaluate: eval/class_acc/<class>
    PERF_IMG_PER_S = "perf/img_per_s"
    PERF_STEP_MS = "perf/step_ms"
    PERF_EPOCH_S = "perf/epoch_s"
    PERF_EVAL_S = "perf/eval_s"
    # train, once per run: throughput and cost
    SUMMARY_IMG_PER_S = "summary/img_per_s"
    SUMMARY_STEP_MS = "summary/step_ms"
    SUMMARY_TRAIN_S = "summary/train_s"
    SUMMARY_WALL_S = "summary/wall_s"
    SUMMARY_DEVICE_HOURS = "summary/device_hours"
    SUMMARY_TIME_TO_BEST_S = "summary/time_to_best_s"
    SUMMARY_BEST_EPOCH = "summary/best_epoch"
    # export
    EXPORT_PARITY = "export/parity_max_abs_diff"
    EXPORT_MINDIR_BYTES = "export/mindir_bytes"
    # infer (batch 1, the 310 flow)
    INFER_TOP1 = "infer/top1"
    INFER_TOP5 = "infer/top5"
    INFER_IMAGES = "infer/images"
    INFER_LATENCY_P50_MS = "infer/latency_p50_ms"
    INFER_LATENCY_P90_MS = "infer/latency_p90_ms"
    INFER_LATENCY_P99_MS = "infer/latency_p99_ms"
    INFER_IMG_PER_S = "infer/img_per_s"
    # preprocess: data/<name> (data/train_images, data/bad_fraction, data/img_per_s, ...)
    DATA_PREFIX = "data/"


class Artifact:
    RECIPE = "recipe.yaml"  # train: the resolved recipe
    CURVES = "curves"  # train: loss.png, accuracy.png, lr.png, history.json
    BEST = "best"  # train: the best checkpoint
    EVALUATION = "evaluation"  # evaluate: confusion_matrix.png/.json, report.html, ...
    MODEL = "model"  # export: the MindIR and its card, source of the registered model version
    INFER = "infer"  # infer: acc.log, predictions.csv, latency.json
    REPORT = "report"  # preprocess: the data report


BEST_METRIC = Metric.EVAL_TOP1  # higher is better
KEY_METRICS = (Metric.EVAL_TOP1, Metric.EVAL_TOP5, Metric.EVAL_LOSS, Metric.TRAIN_LOSS, Metric.PERF_IMG_PER_S,
               Metric.PERF_STEP_MS, Metric.SUMMARY_DEVICE_HOURS, Metric.SUMMARY_TIME_TO_BEST_S,
               Metric.INFER_TOP1, Metric.INFER_LATENCY_P50_MS)
CURVES = (Metric.TRAIN_LOSS, Metric.EVAL_TOP1, Metric.EVAL_LOSS, Metric.TRAIN_LR)


def experiment_name(model: str, dataset_hash: str) -> str:
    """``mindzoo/<model>/<hash[:12]>``; unknown parts are named, never guessed."""
    if not model:
        return UNLINKED_EXPERIMENT
    return f"{EXPERIMENT_ROOT}/{model}/{dataset_hash[:HASH_CHARS] or UNKNOWN_DATA}"


def parent_run_name(pipeline_run_id: str) -> str:
    return f"pipeline-{pipeline_run_id}"


def pipeline_run_id(environ: Mapping[str, str] | None = None) -> str:
    """The KFP run this process is a step of ('' outside a pipeline); see ENV_PIPELINE_RUN_ID."""
    env = os.environ if environ is None else environ
    return env.get(ENV_PIPELINE_RUN_ID) or env.get(ENV_LOCAL_PIPELINE_RUN_ID) or ""


def pipeline_train_run_id(environ: Mapping[str, str] | None = None) -> str:
    """A train step's default run id inside a pipeline ('' outside one): the same for every try of the task,
    so a retried train resumes from its last published checkpoint. One train task runs per pipeline run."""
    run = pipeline_run_id(environ)
    return f"{run}-train" if run else ""


def pipeline_tags(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``pipeline_run_id``, ``git_sha``, ``image``, ``image_digest`` from the environment the pipeline sets."""
    env = os.environ if environ is None else environ
    tags = {tag: env[var] for tag, var in PIPELINE_TAG_ENV.items() if env.get(var)}
    if pipeline_run_id(env):
        tags[Tag.PIPELINE_RUN_ID] = pipeline_run_id(env)
    digest = image_digest(env)
    return {**tags, Tag.IMAGE_DIGEST: digest} if digest else tags


def image_digest(environ: Mapping[str, str] | None = None) -> str:
    """The ``sha256:...`` digest of the image this step runs in, or '' where nothing told it."""
    env = os.environ if environ is None else environ
    if env.get(ENV_IMAGE_DIGEST):
        return check_digest(env[ENV_IMAGE_DIGEST], f"${ENV_IMAGE_DIGEST}")
    pinned = parse_image_digests(env.get(ENV_IMAGE_DIGESTS, ""), f"${ENV_IMAGE_DIGESTS}")
    return pinned.get(env.get(ENV_IMAGE, ""), "")


def check_digest(value: str, key: str) -> str:
    if not DIGEST.fullmatch(value):
        raise ConfigError(key, f"expected sha256:<64 hex digits> (got {value[:80]!r})")
    return value


def parse_image_digests(text: str, key: str) -> dict[str, str]:
    """``"a=sha256:...,b=sha256:..."`` -> ``{"a": "sha256:...", ...}``; a malformed entry names ``key``."""
    out: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        name, sep, digest = entry.partition("=")
        if not (sep and name.strip()):
            raise ConfigError(key, f"entries are <image>=sha256:<64 hex digits> (got {entry[:80]!r})")
        out[name.strip()] = check_digest(digest.strip(), key)
    return out


def step_params(step: str, flat: Mapping[str, Any]) -> dict[str, Any]:
    """A step's own flags as ``<step>.<flag>`` params (so ``export.batch_size`` never reads as ``batch_size``)."""
    return {f"{step}.{key}": value for key, value in flat.items()}


# The 310 flow's report names (acc.log/latency.json keep them) -> the layout's rate name.
_RATE_NAMES = {"images_per_second": "img_per_s", "end_to_end_images_per_second": "end_to_end_img_per_s"}


def infer_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    return {f"infer/{_RATE_NAMES.get(k, k)}": v for k, v in metrics.items()}


def data_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Numeric preprocess figures as ``data/<name>``."""
    return {f"{Metric.DATA_PREFIX}{_RATE_NAMES.get(k, k)}": float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def names(cls: type) -> dict[str, str]:
    """``{CONSTANT: "name"}`` of one of the classes above (the docs test walks them)."""
    return {k: v for k, v in vars(cls).items() if k.isupper() and isinstance(v, str)}
