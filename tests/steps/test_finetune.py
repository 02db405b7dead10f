"""Starting a run from other weights (`mindzoo train --init-from`), end to end against the real stack.

GoogLeNet is pretrained briefly on the digits 0-5 and registered; a task with other
classes (the digits 6-9) then trains for one epoch from the registered model
(``models:/``) and, on the same seed, from scratch: the fine-tuned run must be clearly
better (benchmarks/finetune.py measures it over seeds). Both engines load the same
checkpoint; bad sources fail before anything is published.
"""

from __future__ import annotations

import json
import re
import uuid

import numpy as np
import pytest

from mindzoo.datasets import DIGITS_TRAINING

pytestmark = [pytest.mark.runtime, pytest.mark.stack]

BUCKET = "finetune-tests"
TINY = DIGITS_TRAINING.argv(epochs=False)


def one_error_line(proc) -> str:
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode != 0 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return errors[0]


@pytest.fixture(scope="module")
def subsets(stack, tmp_path_factory):
    """The digits 0-5 and 6-9 as image trees, preprocessed into BUCKET: {"first": uri, "second": uri}."""
    from minio import Minio

    client = Minio(stack.s3_endpoint, stack.access_key, stack.secret_key, secure=False)
    if not client.bucket_exists(BUCKET):
        client.make_bucket(BUCKET)
    root, out = tmp_path_factory.mktemp("digits"), {}
    for name, classes in (("first", "0,1,2,3,4,5"), ("second", "6,7,8,9")):
        stack.cli("datasets", "make-digits", "--format", "imagefolder", "--classes", classes, str(root / name),
                  env="runtime")
        proc = stack.cli("preprocess", "--source", str(root / name), "--output", f"s3://{BUCKET}/datasets",
                         "--no-tracking-enabled", env="runtime")
        out[name] = re.search(r"s3://\S+/datasets/[0-9a-f]+", proc.stderr).group(0)
    return out


def train(stack, dataset, *args, check=True):
    return stack.cli("train", "--dataset", dataset, "--output", f"s3://{BUCKET}/runs", *TINY, *args, env="runtime",
                     check=check, timeout=900)


def top1(proc) -> float:
    return float(re.findall(r"top1=([0-9.]+)", proc.stderr)[-1])


@pytest.fixture(scope="module")
def pretrained(stack, subsets):
    """Two epochs on the digits 0-5, exported and registered under a fresh name."""
    train(stack, subsets["first"], "--set", "epochs=2,num_classes=6", "--run-id", "pre-0to5", "--no-tracking-enabled")
    model = f"s3://{BUCKET}/runs/pre-0to5/model"
    name = f"digits-0to5-{uuid.uuid4().hex[:6]}"
    proc = stack.cli("export", "--checkpoint", model, "--registered-model", name, "--formats", "mindir",
                     env="runtime")
    version = re.search(rf"registered {name} version (\d+)", proc.stderr).group(1)
    return {"uri": model, "registered": f"models:/{name}/{version}"}


def test_fine_tuning_from_a_registered_model_beats_scratch_and_is_recorded(stack, subsets, pretrained):
    from mlflow.tracking import MlflowClient

    from mindzoo.storage import S3Uri, Storage

    common = ("--set", "epochs=1,num_classes=4,seed=1")
    tuned = train(stack, subsets["second"], *common, "--init-from", pretrained["registered"], "--run-id", "ft")
    scratch = train(stack, subsets["second"], *common, "--run-id", "scratch")
    assert "re-initialised for the new class count: classifier.weight, classifier.bias" in tuned.stderr
    assert "285 parameters loaded" in tuned.stderr
    assert top1(tuned) > top1(scratch) + 0.15, (top1(tuned), top1(scratch))
    record = json.loads(Storage.connect().get_bytes(S3Uri(BUCKET, "runs/ft/run.json")))
    start = record["identity"]["init_from"]
    assert start["uri"] == pretrained["registered"] and start["resolved"] == pretrained["uri"]
    assert re.fullmatch(r"[0-9a-f]{64}", start["sha256"]) and start["reinitialised"] == ["classifier.weight",
                                                                                        "classifier.bias"]
    assert record["settings"]["init_from"] == pretrained["registered"]
    client = MlflowClient(stack.mlflow_uri)
    run = client.get_run(record["mlflow_run_id"])
    assert run.data.params["init_from"] == pretrained["registered"]
    assert run.data.params["init_from_sha256"] == start["sha256"]
    assert "init_from" not in json.loads(Storage.connect().get_bytes(S3Uri(BUCKET, "runs/scratch/run.json")))[
        "settings"]


def test_engines_take_each_others_checkpoints_and_freeze_the_backbone(stack, subsets, pretrained, tmp_path):
    import mindspore as ms
    from safetensors.numpy import load_file

    from mindzoo.storage import S3Uri, Storage

    run_prefix = pretrained["uri"].removesuffix("/model")  # a run's prefix stands for its final weights
    proc = train(stack, subsets["second"], "--engine", "torch", "--set", "epochs=1,num_classes=4",
                 "--set", "finetune.freeze=backbone,finetune.head_lr_mult=10", "--init-from", run_prefix,
                 "--steps-per-epoch", "5", "--no-final-eval", "--run-id", "ft-torch", "--no-tracking-enabled")
    assert "backbone frozen: training only classifier.bias, classifier.weight" in proc.stderr
    assert f"initialised from {run_prefix} " in proc.stderr
    store = Storage.connect()
    store.fetch(S3Uri(BUCKET, "runs/ft-torch/model"), tmp_path / "after")
    store.fetch(S3Uri(BUCKET, "runs/pre-0to5/model"), tmp_path / "before")
    after = load_file(str(tmp_path / "after" / "model.safetensors"))
    before = {k: v.asnumpy() for k, v in ms.load_checkpoint(str(tmp_path / "before" / "model.ckpt")).items()}
    frozen = [n for n in before if not n.startswith("classifier.") and "moving_" not in n]
    assert frozen and all(np.array_equal(after[n], before[n]) for n in frozen)  # loaded, then not trained
    assert after["classifier.weight"].shape == (4, 1024)
    back = train(stack, subsets["second"], "--set", "epochs=1,num_classes=4", "--init-from",
                 f"s3://{BUCKET}/runs/ft-torch/model", "--mode", "pynative", "--steps-per-epoch", "1",
                 "--no-final-eval", "--run-id", "ft-from-torch", "--no-tracking-enabled")
    assert "287 parameters loaded" in back.stderr and "re-initialised" not in back.stderr  # all, the head too


@pytest.mark.parametrize("make, extra, message", [
    ("other_model", (), "not a ModelZoo googlenet checkpoint: parameter 'conv1.weight' has no place"),
    ("truncated", (), "is not a readable checkpoint"),
    ("text", (), "is not a readable checkpoint"),
    ("pretrained", ("--strict",), r"has 6 classes \(classifier.weight is \(6, 1024\)\), the run trains 4 "
                                  r"\(--strict\)"),
])
def test_a_bad_source_is_one_error_line_and_publishes_nothing(stack, subsets, pretrained, tmp_path, make, extra,
                                                                message):
    import mindspore as ms

    from mindzoo.storage import S3Uri, Storage

    source = tmp_path / "source.ckpt"
    if make == "other_model":  # ZFNet's names, as the ModelZoo saves them
        ms.save_checkpoint([{"name": n, "data": ms.Tensor(np.zeros((2, 2), np.float32))}
                            for n in ("conv1.weight", "conv1.bias", "fc1.weight")], str(source))
    elif make == "truncated":
        Storage.connect().fetch(S3Uri(BUCKET, "runs/pre-0to5/model"), tmp_path / "full")
        source.write_bytes((tmp_path / "full" / "model.ckpt").read_bytes()[:50_000])
    elif make == "text":
        source.write_text("not a checkpoint\n")
    src = pretrained["uri"] if make == "pretrained" else str(source)
    run_id = f"bad-{make}"
    proc = train(stack, subsets["second"], "--set", "epochs=1,num_classes=4", "--init-from", src, *extra,
                 "--mode", "pynative", "--run-id", run_id, "--no-tracking-enabled", check=False)
    error = one_error_line(proc)
    assert re.search(message, error) and src in error, error
    assert Storage.connect().list(S3Uri(BUCKET, f"runs/{run_id}")) == []
