"""Each component's container, run alone through the real container engine with the command line its
compiled spec gives (placeholders resolved the way a KFP launcher does), against the real local stack.

The steps are chained the way the pipeline chains them (a tiny training: 3 steps at 16 px), so each
container gets the real output of the one before. Each produces its outputs and its executor output;
bad inputs end the container non-zero with one ``error:`` line and no executor output.
"""

import json
import os
import re
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.control, pytest.mark.container, pytest.mark.stack, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from components import images  # noqa: E402 - the single source of image names

RUN_ID = "component-test"
PARAM = re.compile(r"\{\{\$\.inputs\.parameters\['([a-z_0-9]+)'\]\}\}")
ARTIFACT = re.compile(r"\{\{\$\.inputs\.artifacts\['([a-z_0-9]+)'\]\.uri\}\}")


def compiled(folder, name, tmp):
    from kfp import compiler

    module = __import__(f"components.{folder}.component", fromlist=[name])
    path = tmp / f"{name}.yaml"
    compiler.Compiler().compile(getattr(module, name), str(path))
    spec = yaml.safe_load(path.read_text())
    return spec, spec["deploymentSpec"]["executors"][f"exec-{name.replace('_', '-')}"]["container"]


def resolve(items, params, artifacts, executor_input, task):
    """A KFP launcher's placeholder resolution: IfPresent, inputs, executor input, run and task names."""
    out = []
    for item in items:
        if item.startswith('{"IfPresent"'):
            spec = json.loads(item)["IfPresent"]
            chosen = spec["Then"] if spec["InputName"] in params else spec.get("Else", [])
            out += resolve(chosen, params, artifacts, executor_input, task)
            continue
        item = item.replace("{{$}}", json.dumps(executor_input)).replace("{{$.pipeline_job_uuid}}", RUN_ID)
        item = item.replace("{{$.pipeline_task_name}}", task)
        item = PARAM.sub(lambda m: str(params[m.group(1)]), item)
        out.append(ARTIFACT.sub(lambda m: artifacts[m.group(1)], item))
    return out


class Runner:
    """Runs a component's container alone, as a KFP task pod would (endpoints and keys from the env)."""

    def __init__(self, stack, work):
        import docker

        self.client, self.stack, self.work = docker.DockerClient(base_url=stack.engine_socket), stack, work
        self.env = {"AWS_ACCESS_KEY_ID": stack.access_key, "AWS_SECRET_ACCESS_KEY": stack.secret_key,
                    "MINDZOO_S3_ENDPOINT": stack.s3_endpoint, "MLFLOW_TRACKING_URI": stack.mlflow_uri}

    def run(self, folder, name, params, artifacts=None, task=None):
        spec, container = compiled(folder, name, self.work)
        task = task or name
        root = self.work / f"{task}-{os.urandom(3).hex()}"
        root.mkdir(mode=0o777)
        root.chmod(0o777)  # the image's user writes the outputs
        outputs = spec["components"][f"comp-{name.replace('_', '-')}"]["outputDefinitions"]["artifacts"]
        executor_input = {
            "inputs": {"parameterValues": params, "artifacts": {
                k: {"artifacts": [{"uri": v, "metadata": {}}]} for k, v in (artifacts or {}).items()}},
            "outputs": {"outputFile": str(root / "executor_output.json"), "artifacts": {
                k: {"artifacts": [{"name": k, "uri": str(root / k), "type": v["artifactType"]}]}
                for k, v in outputs.items()}}}
        argv = resolve(container["command"] + container["args"], params, artifacts or {}, executor_input, task)
        assert container["image"] == images.CPU
        ran = self.client.containers.run(container["image"], argv, entrypoint=[""], detach=True, network_mode="host",
                                         environment=self.env,
                                         volumes={str(self.work): {"bind": str(self.work), "mode": "rw"}})
        try:
            code = ran.wait(timeout=900)["StatusCode"]
            err = ran.logs(stdout=False, stderr=True).decode(errors="replace")
        finally:
            ran.remove(force=True)
        out = root / "executor_output.json"
        return code, err, (json.loads(out.read_text()) if out.is_file() else None), root


def ok(done):
    """A chained step's result, failing the chain with the step's own stderr when it did not succeed."""
    code, err, out, _ = done
    assert code == 0 and out is not None, err[-3000:]
    return out


def artifact(executor_output, name):
    return executor_output["artifacts"][name]["artifacts"][0]


def pointed(art) -> str:
    """Where a step's big output lives: its KFP artifact is a pointer file (mindzoo.kfp_io) naming it."""
    from mindzoo.kfp_io import follow_pointer

    assert follow_pointer(art["uri"]) == art["metadata"]["location"] != art["uri"]
    return art["metadata"]["location"]


def one_error_line(code, err, executor_output):
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0 and executor_output is None
    assert lines and lines[-1].startswith("error: ") and "Traceback" not in err, err[-2000:]
    return lines[-1]


@pytest.fixture(scope="module")
def runner(stack, tmp_path_factory):
    work = tmp_path_factory.mktemp("components")
    work.chmod(0o777)
    return Runner(stack, work)


@pytest.fixture(scope="module")
def chain(runner):
    """preprocess → train → evaluate → export → locate → infer310, each container fed the previous one's outputs
    (infer310 takes the locate tasks' pointers to the published dataset and export, as in infer_pipeline)."""
    digits = runner.work / "digits"
    runner.client.containers.run(images.CPU, ["datasets", "make-digits", "--format", "cifar10", str(digits)],
                                 volumes={str(runner.work): {"bind": str(runner.work), "mode": "rw"}}, remove=True)
    done = {}
    done["preprocess"] = runner.run("preprocess", "preprocess", {"source": str(digits)})
    dataset = artifact(ok(done["preprocess"]), "dataset")["uri"]
    done["train"] = runner.run("train", "train", {"recipe": "googlenet_cifar10", "input_size": 16,
                                                   "set": "epochs=1,batch_size=16,data.train.hflip=0",
                                                   "steps_per_epoch": 3}, {"dataset": dataset})
    checkpoint = artifact(ok(done["train"]), "checkpoint")["uri"]
    done["evaluate"] = runner.run("evaluate", "evaluate", {}, {"checkpoint": checkpoint, "dataset": dataset})
    done["export"] = runner.run("export", "export", {}, {"checkpoint": checkpoint})
    exported = artifact(ok(done["export"]), "model")["metadata"]["location"]
    located = artifact(ok(done["preprocess"]), "dataset")["metadata"]["location"]
    done["locate_dataset"] = runner.run("locate", "locate_dataset", {"uri": located})
    done["locate_model"] = runner.run("locate", "locate_model", {"uri": exported})
    model = artifact(ok(done["locate_model"]), "model")["uri"]
    data = artifact(ok(done["locate_dataset"]), "dataset")["uri"]
    done["infer310"] = runner.run("infer310", "infer310", {"max_images": 40}, {"model": model, "data": data})
    return done


def test_preprocess_publishes_the_dataset_and_its_report(chain):
    code, err, out, root = chain["preprocess"]
    assert code == 0, err[-2000:]
    dataset = artifact(out, "dataset")
    assert pointed(dataset).startswith("s3://mindzoo/datasets/") and dataset["metadata"]["num_classes"] == 10
    report = (root / "report").read_text()
    assert report.startswith("# Data report: digits") and "| Classes | 10 |" in report


def test_train_publishes_the_checkpoint_under_the_pipeline_run_id(chain):
    code, err, out, _ = chain["train"]
    assert code == 0, err[-2000:]
    checkpoint = artifact(out, "checkpoint")
    assert pointed(checkpoint) == f"s3://mindzoo/runs/{RUN_ID}-train/model"  # the component's default run id
    assert checkpoint["metadata"]["model"] == "googlenet" and checkpoint["metadata"]["input_size"] == 16
    assert artifact(out, "metrics")["metadata"]["steps"] == 3


def test_evaluate_reports_metrics_confusion_matrix_and_html(chain):
    code, err, out, root = chain["evaluate"]
    assert code == 0, err[-2000:]
    assert 0.0 <= artifact(out, "metrics")["metadata"]["top1"] <= 1.0
    matrix = artifact(out, "confusion")["metadata"]["confusionMatrix"]
    assert len(matrix["rows"]) == 10
    html = (root / "report").read_text()
    assert html.lower().startswith("<!doctype html>") and "359 images" in html


def test_export_publishes_a_mindir_next_to_the_run(chain):
    code, err, out, _ = chain["export"]
    assert code == 0, err[-2000:]
    model = artifact(out, "model")
    assert pointed(model) == f"s3://mindzoo/runs/{RUN_ID}-train/export"
    assert model["metadata"]["format"] == "mindir" and model["metadata"]["input_shape"] == [1, 3, 16, 16]


@pytest.mark.parametrize("name, output, step", [("locate_dataset", "dataset", "preprocess"),
                                                 ("locate_model", "model", "export")])
def test_locate_points_at_what_the_step_before_published(chain, name, output, step):
    code, err, out, _ = chain[name]
    assert code == 0, err[-2000:]
    located = artifact(out, output)
    assert pointed(located) == pointed(artifact(chain[step][2], output))
    assert located["metadata"]["files"] >= 2 and located["metadata"]["version"]


def test_infer310_writes_acc_log_and_metrics(chain):
    code, err, out, root = chain["infer310"]
    assert code == 0, err[-2000:]
    assert artifact(out, "metrics")["metadata"]["images"] == 40
    from mindzoo.infer.report import parse_acc  # the recipe's own postprocess line(s), any recipe's format

    assert parse_acc((root / "results" / "acc.log").read_text())["images"] == 40


BAD = [  # component folder, component, parameters, artifacts, expected error
    ("preprocess", "preprocess", {"source": "/nowhere/raw"}, {}, r"source /nowhere/raw does not exist"),
    ("preprocess", "preprocess", {"source": "s3://mindzoo/raw", "shard_size": 0}, {},
     r"preprocess\.shard_size: must be >= 1"),
    ("train", "train", {"input_size": 4}, {"dataset": "s3://mindzoo/datasets/x"},
     r"train\.input_size: must be 0 \(the recipe's\) or >= 8"),
    ("evaluate", "evaluate", {"min_top1": 1.5}, {"checkpoint": "s3://mindzoo/runs/x/model",
                                                  "dataset": "s3://mindzoo/datasets/x"},
     r"evaluate\.min_top1: must be in \[0, 1\]"),
    ("export", "export", {"batch_size": 0}, {"checkpoint": "s3://mindzoo/runs/x/model"},
     r"export\.batch_size: must be in 1\.\.4096"),
    ("infer310", "infer310", {}, {"model": "/nowhere/model.mindir", "data": "s3://mindzoo/datasets/x"},
     r"no such MindIR file or folder: /nowhere/model\.mindir"),
    ("locate", "locate_model", {"uri": "s3://mindzoo/runs/nothing/export"}, {},
     r"s3://mindzoo/runs/nothing/export: no model published there"),
    ("locate", "locate_dataset", {"uri": "models:/googlenet/1"}, {}, r"locate\.uri: a dataset must be s3://"),
]


@pytest.mark.parametrize("folder, name, params, artifacts, message", BAD,
                         ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD)])
def test_bad_inputs_fail_inside_the_container_with_one_error_line(runner, folder, name, params, artifacts, message):
    code, err, out, _ = runner.run(folder, name, params, artifacts, task=f"bad-{name}")
    assert re.search(message, one_error_line(code, err, out))
