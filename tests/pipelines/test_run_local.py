"""The whole train pipeline, end to end, through kfp.local and the real container engine:
`mindzoo pipeline run-local` on the bundled digits (GoogLeNet's CIFAR-10 recipe at 16 px, as
tests/steps/test_train.py's DIGITS_RUN) against the real local stack.

One run (module fixture, ~5 minutes on 2 cores) is checked from every side: the last line,
the images the tasks ran in, the artifacts each task handed to the next, MLflow and MinIO.
"""

import json
import re
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.control, pytest.mark.container, pytest.mark.stack, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from components import images  # noqa: E402 - the single source of image names
from mindzoo.datasets import DIGITS_TRAINING  # noqa: E402
from mindzoo.infer.report import parse_acc  # noqa: E402
from mindzoo.kfp_io import follow_pointer  # noqa: E402

STEPS = ("preprocess", "train", "evaluate", "export", "infer")


@pytest.fixture(scope="module")
def run(stack, tmp_path_factory):
    """`mindzoo pipeline run-local` with its defaults (the digits recipe), as `make demo` runs it."""
    root = tmp_path_factory.mktemp("pipeline-run")
    proc = stack.cli("pipeline", "run-local", "--root", str(root), check=False, timeout=1200)
    assert proc.returncode == 0, f"run-local exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    run_id = re.search(r"^pipeline run (\S+) finished", proc.stdout, re.M).group(1)
    (task_root,) = [p for p in root.iterdir() if p.name.startswith("mindzoo-train-")]
    outputs = {p.name: json.loads((p / "executor_output.json").read_text()) for p in task_root.iterdir()
               if (p / "executor_output.json").is_file()}
    return {"proc": proc, "lines": lines, "run_id": run_id, "outputs": outputs, "root": root}


def _artifact(outputs, task_prefix, name):
    (task,) = [t for t in outputs if re.fullmatch(rf"{task_prefix}(-\d+)?", t)]
    return outputs[task]["artifacts"][name]["artifacts"][0]


def _location(run, task_prefix, name):
    """Where a task's output lives in MinIO (its artifact is a pointer naming it)."""
    return _artifact(run["outputs"], task_prefix, name)["metadata"]["location"]


def _acc_log(lines):
    """run-local's last lines: the acc.log after the MLflow link (GoogLeNet's own 310 postprocess line(s))."""
    (at,) = [i for i, line in enumerate(lines) if line.startswith("MLflow: http://127.0.0.1:")]
    return parse_acc("\n".join(lines[at + 1:]))


def test_the_last_lines_are_the_inference_acc_log_of_at_least_90_percent(run):
    acc = _acc_log(run["lines"])
    assert acc["images"] == 359  # every digit of the val split, batch 1
    assert acc["top1"] >= 0.90


def test_every_task_ran_in_the_built_image(run):
    out = run["proc"].stdout
    executed = re.findall(r"Executing task .*?'([a-z0-9-]+)'", out)
    assert [re.sub(r"-\d+$", "", t) for t in executed] == ["preprocess", "train", "evaluate", "export", "infer310"]
    assert out.count(f"Found image '{images.CPU}'") == len(executed)  # kfp.local's DockerRunner, never pulled


def test_artifacts_pass_from_task_to_task(run):
    outputs = run["outputs"]
    dataset = _artifact(outputs, "preprocess", "dataset")
    checkpoint = _artifact(outputs, "train", "checkpoint")
    model = _artifact(outputs, "export", "model")
    # Each artifact is KFP's own file, a pointer to the prefix in MinIO (KFP never copies the shards into a pod).
    for art in (dataset, checkpoint, model):
        assert follow_pointer(art["uri"]) == art["metadata"]["location"] != art["uri"]
    dataset, checkpoint, model = (a["metadata"] for a in (dataset, checkpoint, model))
    assert dataset["location"].startswith("s3://mindzoo/datasets/") and dataset["num_classes"] == 10
    # train's default run id in a pipeline: the pipeline run's + "-train" (mindzoo.runs.layout), whichever branch
    assert checkpoint["location"] == f"s3://mindzoo/runs/{run['run_id']}-train/model"
    assert checkpoint["dataset_hash"].startswith(dataset["location"].rsplit("/", 1)[1])
    assert model["location"] == checkpoint["location"].rsplit("/", 1)[0] + "/export" and model["format"] == "mindir"
    gate = _artifact(outputs, "evaluate", "metrics")["metadata"]
    assert gate["top1"] >= 0.8  # the gate run-local sets
    metrics = _artifact(outputs, "infer310", "metrics")["metadata"]
    assert metrics["images"] == 359 and metrics["top1"] >= 0.90


def test_mlflow_has_one_run_per_step_linked_by_the_pipeline_run(run, stack):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=stack.mlflow_uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, f"tags.pipeline_run_id = '{run['run_id']}'")
    steps = sorted(r.data.tags.get("mindzoo.step") for r in runs if r.data.tags.get("mindzoo.step"))
    assert steps == sorted(STEPS)
    by_step = {r.data.tags["mindzoo.step"]: r for r in runs if r.data.tags.get("mindzoo.step")}
    assert all(r.info.status == "FINISHED" for r in by_step.values())
    assert {r.data.tags.get("image") for r in by_step.values()} == {images.CPU.split("/", 1)[1]}
    checkpoint = _location(run, "train", "checkpoint")
    assert by_step["evaluate"].data.tags["checkpoint"] == checkpoint  # what train handed on
    infer = by_step["infer"].data
    assert _location(run, "export", "model") in infer.params.values()  # what export handed on
    top1 = [value for key, value in infer.metrics.items() if key.rsplit("/", 1)[-1] == "top1"]
    assert top1 and top1[0] >= 0.90


def test_datasets_checkpoints_and_models_are_in_minio(run, stack):
    from minio import Minio

    store = Minio(stack.s3_endpoint, stack.access_key, stack.secret_key, secure=False)
    dataset = _location(run, "preprocess", "dataset").removeprefix("s3://mindzoo/")
    run_prefix = _location(run, "train", "checkpoint").removeprefix("s3://mindzoo/")[:-len("/model")]
    keys = {o.object_name for o in store.list_objects("mindzoo", prefix=dataset, recursive=True)}
    assert f"{dataset}/MANIFEST.json" in keys and any(k.endswith(".mindrecord") for k in keys)
    keys = {o.object_name for o in store.list_objects("mindzoo", prefix=run_prefix + "/", recursive=True)}
    assert f"{run_prefix}/model/MANIFEST.json" in keys and any(k.endswith("model.ckpt") for k in keys)
    assert f"{run_prefix}/export/MANIFEST.json" in keys and any(k.endswith("googlenet.mindir") for k in keys)


def test_the_infer_pipeline_scores_the_registered_model(run, stack, tmp_path_factory):
    """infer_pipeline from the Model Registry (`models:/<name>/<version>`, what export registered) on the
    same dataset: the same accuracy, through the locate tasks (which resolve the registered version) and the infer
    branch."""
    model = _artifact(run["outputs"], "export", "model")["metadata"]
    dataset = _location(run, "preprocess", "dataset")
    registered = f"models:/{model['registered_model']}/{model['registered_version']}"
    proc = stack.cli("pipeline", "run-local", "--pipeline", "infer", "--root", str(tmp_path_factory.mktemp("infer")),
                     "--param", f"data={dataset}", "--param", f"model={registered}", check=False, timeout=900)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    acc = _acc_log([line for line in proc.stdout.splitlines() if line.strip()])
    assert acc["images"] == 359 and acc["top1"] >= 0.90, proc.stdout[-500:]
    assert f"{registered} is {_location(run, 'export', 'model')}" in proc.stdout


def test_a_torch_run_fine_tuned_from_the_registered_model_passes_the_gate(run, stack, tmp_path_factory):
    """train_pipeline's `engine` and `init_from` together (one more pipeline run, not two): the torch engine
    starts from the MindSpore-trained registered model's weights (a fresh optimizer and schedule), its
    checkpoint goes through the same export (MindIR) and inference, the run passes the accuracy gate, and
    MLflow records the engine and where training started."""
    from mlflow.tracking import MlflowClient

    model = _artifact(run["outputs"], "export", "model")["metadata"]
    registered = f"models:/{model['registered_model']}/{model['registered_version']}"
    # Two epochs, not the twelve from scratch: training starts from a model that already passes the gate.
    overrides = ",".join(("epochs=2", *DIGITS_TRAINING.overrides(epochs=False)))
    proc = stack.cli("pipeline", "run-local", "--root", str(tmp_path_factory.mktemp("finetune")), "--set", overrides,
                     "--param", f"init_from={registered}", "--param", "engine=torch", check=False, timeout=1200)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    acc = _acc_log([line for line in proc.stdout.splitlines() if line.strip()])
    assert acc["images"] == 359 and acc["top1"] >= 0.90, proc.stdout[-500:]
    run_id = re.search(r"^pipeline run (\S+) finished", proc.stdout, re.M).group(1)
    client = MlflowClient(tracking_uri=stack.mlflow_uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    (train,) = client.search_runs(experiments, f"tags.pipeline_run_id = '{run_id}' and tags.`mindzoo.step` = 'train'")
    assert train.data.params["init_from"] == registered
    assert train.data.params["engine"] == "torch"
    assert train.data.params["recipe.epochs"] == "2"


def test_a_failing_task_fails_the_local_run_with_one_error_line(stack, tmp_path):
    """A task's non-zero exit stops the run (kfp.local alone loses podman's exit codes: pipeline/kfp_local.py)."""
    proc = stack.cli("pipeline", "run-local", "--root", str(tmp_path), "--source", "/nowhere/raw", "--retries", "0",
                     check=False, timeout=600)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert lines[-1].startswith("error: local pipeline run failed: ") and "'preprocess'" in lines[-1]
    assert "error: source /nowhere/raw does not exist" in proc.stdout  # the task's own error line
    assert set(re.findall(r"Executing task .*?'([a-z0-9-]+)'", proc.stdout)) == {"preprocess"}  # nothing after it
