"""The pipelines compiled with the real KFP compiler: golden specs, node pools, secrets, retries, caching.

Goldens live in ``tests/pipelines/golden``; the SDK version and image tags are normalised
away. After an intended change, regenerate them with
``MINDZOO_UPDATE_GOLDEN=1 .venv-control/bin/python -m pytest tests/pipelines`` and review the diff.
"""

import difflib
import json
import os
import re
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.control

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `components` and `pipelines` are top-level folders of the repository
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from specs import GOLDEN, compile_docs, normalise  # noqa: E402 - compiling helpers shared with test_cli


@pytest.mark.parametrize("name", ["train", "infer"])
def test_compiled_spec_matches_the_golden_copy(name, tmp_path):
    _, _, path = compile_docs(name, tmp_path)
    actual = normalise(path.read_text())
    golden = GOLDEN / f"{name}_pipeline.yaml"
    if os.environ.get("MINDZOO_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(actual)
    expected = golden.read_text()
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), str(golden), "actual"))
        pytest.fail(f"{name} pipeline differs from {golden} (MINDZOO_UPDATE_GOLDEN=1 regenerates it):\n{diff}")


def executors_by_branch(spec):
    """{executor label: [enclosing condition names..., task name]} over the whole DAG."""
    return {label: path for label, (path, _) in tasks_by_executor(spec).items()}


def tasks_by_executor(spec):
    """{executor label: (path, task)} over the whole DAG."""
    found = {}

    def walk(dag, path):
        for task_name, task in dag["tasks"].items():
            component = spec["components"][task["componentRef"]["name"]]
            here = [*path, task.get("taskInfo", {}).get("name", task_name)]
            if "dag" in component:
                walk(component["dag"], here)
            else:
                found[component["executorLabel"]] = (here, task)

    walk(spec["root"]["dag"], [])
    return found


def branch_executor(spec, branch):
    return next(label for label, path in executors_by_branch(spec).items() if branch in path[:-1])


def launch_pools(spec):
    _, task = tasks_by_executor(spec)[branch_executor(spec, "train-distributed")]
    return json.loads(task["inputs"]["parameters"]["launch_pools"]["runtimeValue"]["constant"])


POOLS = {  # branch: (image, resource, count, node label, taint)
    "train-ascend": ("mindzoo-ascend", "huawei.com/Ascend910", "{{$.inputs.parameters['pipelinechannel--workers']}}",
                     {"accelerator": "huawei-Ascend910"}, "huawei.com/Ascend910"),
    "train-gpu": ("mindzoo-gpu", "nvidia.com/gpu", "{{$.inputs.parameters['pipelinechannel--workers']}}",
                  {"nvidia.com/gpu.present": "true"}, "nvidia.com/gpu"),
    "infer-ascend310": ("mindzoo-ascend", "huawei.com/Ascend310", "1", {"accelerator": "huawei-Ascend310"},
                        "huawei.com/Ascend310"),
    "infer-ascend310p": ("mindzoo-ascend", "huawei.com/Ascend310P", "1", {"accelerator": "huawei-Ascend310P"},
                         "huawei.com/Ascend310P"),
}


@pytest.mark.parametrize("branch", sorted(POOLS))
def test_device_variants_carry_their_resources_selectors_and_tolerations(branch, tmp_path):
    spec, platform, _ = compile_docs("train", tmp_path)
    image, resource, count, labels, taint = POOLS[branch]
    label = branch_executor(spec, branch)
    container = spec["deploymentSpec"]["executors"][label]["container"]
    assert f"/{image}:" in container["image"]
    assert container["resources"]["accelerator"]["resourceType"] == resource
    assert container["resources"]["accelerator"]["resourceCount"] == count
    assert platform[label]["nodeSelector"]["labels"] == labels
    assert platform[label]["tolerations"] == [{"key": taint, "operator": "Exists", "effect": "NoSchedule"}]


@pytest.mark.parametrize("branch", ["train-cpu", "infer-cpu"])
def test_cpu_tasks_ask_for_no_accelerator_and_no_pool(branch, tmp_path):
    spec, platform, _ = compile_docs("train", tmp_path)
    label = branch_executor(spec, branch)
    container = spec["deploymentSpec"]["executors"][label]["container"]
    assert "/mindzoo-cpu:" in container["image"] and "resources" not in container
    assert "nodeSelector" not in platform[label] and "tolerations" not in platform[label]


def test_pool_names_and_labels_are_overridable(tmp_path):
    spec, platform, _ = compile_docs("train", tmp_path, ascend910_resource="huawei.com/Ascend910B",
                                     ascend910_selector="node.example.com/npu=910b", ascend910_taint="",
                                     ascend310_resource="huawei.com/Ascend310P")
    label = branch_executor(spec, "train-ascend")
    container = spec["deploymentSpec"]["executors"][label]["container"]
    assert container["resources"]["accelerator"]["resourceType"] == "huawei.com/Ascend910B"
    assert platform[label]["nodeSelector"]["labels"] == {"node.example.com/npu": "910b"}
    assert "tolerations" not in platform[label]
    infer = spec["deploymentSpec"]["executors"][branch_executor(spec, "infer-ascend310")]["container"]
    assert infer["resources"]["accelerator"]["resourceType"] == "huawei.com/Ascend310P"
    pools = launch_pools(spec)
    assert pools["ascend"]["resource"] == "huawei.com/Ascend910B" and pools["ascend"]["tolerations"] == []


@pytest.mark.parametrize("name", ["train", "infer"])
def test_credentials_come_only_from_the_secret(name, tmp_path):
    spec, platform, _ = compile_docs(name, tmp_path, s3_secret="mlpipeline-minio-artifact")
    assert set(platform) == set(spec["deploymentSpec"]["executors"])  # every task, infer's `locate`s too
    for label, config in platform.items():
        assert config["secretAsEnv"] == [{
            "secretName": "mlpipeline-minio-artifact", "optional": False,
            "secretNameParameter": {"runtimeValue": {"constant": "mlpipeline-minio-artifact"}},
            "keyToEnv": [{"secretKey": "accesskey", "envVar": "AWS_ACCESS_KEY_ID"},
                         {"secretKey": "secretkey", "envVar": "AWS_SECRET_ACCESS_KEY"}]}, {
            # MLflow's basic-auth login (chart: mlflow.auth); optional, tasks start where MLflow has no auth.
            "secretName": "mindzoo-mlflow-auth", "optional": True,
            "secretNameParameter": {"runtimeValue": {"constant": "mindzoo-mlflow-auth"}},
            "keyToEnv": [{"secretKey": "username", "envVar": "MLFLOW_TRACKING_USERNAME"},
                         {"secretKey": "password", "envVar": "MLFLOW_TRACKING_PASSWORD"}]}], label
        assert config["configMapAsEnv"][0]["optional"] is True
        # The KFP run id, from the label KFP's API server puts on every pod of a run (not a placeholder).
        assert config["fieldPathAsEnv"] == [{"name": "MINDZOO_PIPELINE_RUN_ID",
                                             "fieldPath": "metadata.labels['pipeline/runid']"}], label
    off, platform, _ = compile_docs(name, tmp_path / "off", mlflow_secret="")
    assert all(len(config["secretAsEnv"]) == 1 for config in platform.values())
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert not [p for p in params if re.search(r"key|secret|password|token|credential", p)]


def test_the_distributed_branch_launches_worker_pods_on_the_device_pool(tmp_path):
    spec, platform, _ = compile_docs("train", tmp_path)
    label = branch_executor(spec, "train-distributed")
    container = spec["deploymentSpec"]["executors"][label]["container"]
    assert container["command"][-3:] == ["mindzoo", "launch", "train"] and "resources" not in container
    assert "nodeSelector" not in platform[label]  # the launcher pod waits; the worker pods hold the devices
    args = container["args"]
    assert args[args.index("--launch-pools") + 1] == "{{$.inputs.parameters['launch_pools']}}"
    # The run's launch kind and Kueue queue reach the launcher (pipeline parameters, default: an Indexed Job).
    flags = [json.loads(a)["IfPresent"]["Then"][0] for a in args if isinstance(a, str) and a.startswith('{"IfPresent"')]
    assert {"--launch-kind", "--launch-queue"} <= set(flags)
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    assert (inputs["launch_kind"]["defaultValue"], inputs["launch_queue"]["defaultValue"]) == ("job", "")
    pools = launch_pools(spec)
    assert pools["ascend"]["resource"] == "huawei.com/Ascend910" and "/mindzoo-ascend:" in pools["ascend"]["image"]
    assert pools["ascend"]["node_selector"] == {"accelerator": "huawei-Ascend910"}
    assert pools["ascend"]["tolerations"] == ["huawei.com/Ascend910"]
    assert pools["gpu"]["resource"] == "nvidia.com/gpu" and pools["cpu"]["resource"] == ""
    _, task = tasks_by_executor(spec)[label]
    assert task["inputs"]["parameters"]["s3_secret"]["runtimeValue"]["constant"] == "mindzoo-minio-tasks"
    assert not {"launch_cpu", "launch_memory"} & set(task["inputs"]["parameters"])  # the launcher's defaults
    sized, _, _ = compile_docs("train", tmp_path / "sized", worker_cpu="500m", worker_memory="3Gi")
    _, task = tasks_by_executor(sized)[label]
    assert {k: task["inputs"]["parameters"][k]["runtimeValue"]["constant"] for k in ("launch_cpu", "launch_memory")} \
        == {"launch_cpu": "500m", "launch_memory": "3Gi"}
    condition = next(t for t in spec["root"]["dag"]["tasks"].values() if "condition-branches" in
                     t["componentRef"]["name"] and "train" in json.dumps(spec["components"][t["componentRef"]["name"]]))
    assert condition  # train's four branches are one If/Elif/Else group merged by OneOf


def leaf_tasks(spec):
    """{task name: [the container tasks of that name, in every branch]} over the whole DAG."""
    tasks = {}

    def walk(dag):
        for name, task in dag["tasks"].items():
            component = spec["components"][task["componentRef"]["name"]]
            walk(component["dag"]) if "dag" in component else tasks.setdefault(name, []).append(task)

    walk(spec["root"]["dag"])
    return tasks


def test_no_task_is_cached_by_kfp_and_io_bound_and_train_steps_retry(tmp_path):
    spec, _, _ = compile_docs("train", tmp_path)
    tasks = leaf_tasks(spec)
    cached = {n for n, ts in tasks.items() if any(t.get("cachingOptions", {}).get("enableCache") for t in ts)}
    assert cached == set()  # preprocess caches by content itself (tests/steps/test_preprocess.py)
    retried = {re.sub(r"-[0-9]+$", "", n) for n, ts in tasks.items() if all("retryPolicy" in t for t in ts)}
    assert retried == {"preprocess", "export", "infer310", "train", "train-distributed"}
    assert tasks["preprocess"][0]["retryPolicy"]["maxRetryCount"] == 2
    # A retried train task resumes its run (same pipeline job id and task name: the same default run id), once
    # the killed pod's run lease (60 s) has lapsed.
    trains = {n: ts for n, ts in tasks.items() if n.startswith("train")}
    assert len(trains) == 4  # single-pod cpu/gpu/ascend and the distributed launcher
    assert all(t["retryPolicy"]["backoffDuration"] == "90s" for ts in trains.values() for t in ts), trains


def test_infer_pipeline_locates_its_uris_without_retrying_and_retries_its_io_bound_steps(tmp_path):
    spec, _, _ = compile_docs("infer", tmp_path)
    tasks = leaf_tasks(spec)
    names = {re.sub(r"-[0-9]+$", "", n) for n in tasks}
    assert names == {"locate-dataset", "locate-model", "export", "infer310"}
    retried = {re.sub(r"-[0-9]+$", "", n) for n, ts in tasks.items() if all("retryPolicy" in t for t in ts)}
    assert retried == {"export", "infer310"}  # a URI nothing was published at stays an error
    shown = sorted(t["taskInfo"]["name"] for n, ts in tasks.items() if n.startswith("locate") for t in ts)
    assert shown == ["checkpoint", "data", "model"]


def test_workspace_and_pvc_options_become_the_steps_cache(tmp_path):
    spec, _, path = compile_docs("train", tmp_path, workspace_size="500Gi")
    platform = list(yaml.safe_load_all(path.read_text()))[1]["platforms"]["kubernetes"]
    assert platform["pipelineConfig"]["workspace"]["size"] == "500Gi"  # one PVC per run, shared by its tasks
    assert "{{$.workspace_path}}" in json.dumps(spec["root"]["dag"]["tasks"]["preprocess"]["inputs"])
    spec, platform, _ = compile_docs("train", tmp_path, data_pvc="imagenet")
    assert platform["exec-preprocess"]["pvcMount"][0]["mountPath"] == "/mnt/mindzoo"
    assert platform["exec-preprocess"]["pvcMount"][0]["constant"] == "imagenet"
    assert "/mnt/mindzoo/cache" in json.dumps(spec["root"]["dag"]["tasks"]["preprocess"]["inputs"])
