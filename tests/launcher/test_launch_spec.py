"""What `mindzoo launch train` asks Kubernetes for, built from the train flags and the compiled pools (pure;
tests/cluster/test_launch_cli.py creates it on a real API server)."""

from __future__ import annotations

import json

import pytest

from mindzoo.config import StorageConfig, TrackingConfig, TrainConfig
from mindzoo.errors import ConfigError
from mindzoo.launcher.spec import job_manifest
from mindzoo.launcher.train import build_spec, job_name
from mindzoo.pipeline.config import LaunchConfig

POOLS = json.dumps({
    "cpu": {"image": "r/mindzoo-cpu:1", "resource": "", "node_selector": {}, "tolerations": []},
    "ascend": {"image": "r/mindzoo-ascend:1", "resource": "huawei.com/Ascend910",
               "node_selector": {"accelerator": "huawei-Ascend910"}, "tolerations": ["huawei.com/Ascend910"]},
})


def spec(device="ascend", workers=8, **launch):
    cfg = TrainConfig(dataset="s3://b/datasets/d", run_id="run-1", workers=workers, device=device,
                      set=("epochs=3",))
    defaults = {"nodes": 2, "pools": POOLS, "s3_secret": "mindzoo-minio", "namespace": "ml"}
    return build_spec(cfg, LaunchConfig(**{**defaults, **launch}), StorageConfig(endpoint="minio:9000"),
                      TrackingConfig(uri="http://mlflow:5000"))


def test_the_device_pool_gives_image_devices_selector_and_tolerations():
    built = spec()
    assert built.image == "r/mindzoo-ascend:1" and built.resources == {"huawei.com/Ascend910": "8"}
    assert built.node_selector == {"accelerator": "huawei-Ascend910"}
    assert [t.key for t in built.tolerations] == ["huawei.com/Ascend910"] and built.nodes == 2
    cpu = spec(device="cpu", workers=2)
    assert cpu.image == "r/mindzoo-cpu:1" and cpu.resources == {} and cpu.tolerations == ()


def test_pods_run_the_node_command_with_the_same_train_flags_and_no_credentials():
    built = spec()
    command = list(built.command)
    assert command[:7] == ["mindzoo", "launch", "node", "--workers", "8", "--result",
                           "s3://mindzoo/runs/run-1/launch/result.json"]
    train = command[command.index("--") + 1:]
    assert train[0] == "train" and train[train.index("--run-id") + 1] == "run-1"
    assert train[train.index("--set") + 1] == "epochs=3" and "--storage-endpoint" in train
    container = job_manifest(built)["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"] == {"name": "mindzoo-minio", "key": "accesskey"}
    assert "value" not in env["AWS_SECRET_ACCESS_KEY"]
    assert env["MLFLOW_TRACKING_URI"]["value"] == "http://mlflow:5000"
    assert env["MINDZOO_S3_ENDPOINT"]["value"] == "minio:9000"


def test_workers_get_mlflows_credentials_from_the_secret_the_task_got_them_from(monkeypatch):
    monkeypatch.setenv("MINDZOO_MLFLOW_SECRET", "mindzoo-mlflow-auth")
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    # The task's optional Secret is missing (MLflow without auth): workers name no Secret they could not start on.
    assert not [k for k in spec().secret_keys if k.env.startswith("MLFLOW_")]
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "mindzoo")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "s3cret-in-the-task-pod")
    container = job_manifest(spec())["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["MLFLOW_TRACKING_USERNAME"]["valueFrom"]["secretKeyRef"] == {"name": "mindzoo-mlflow-auth",
                                                                            "key": "username"}
    assert env["MLFLOW_TRACKING_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "mindzoo-mlflow-auth",
                                                                            "key": "password"}
    assert "s3cret-in-the-task-pod" not in json.dumps(container)  # the value never travels in the Job


def test_job_names_are_dns_labels_unique_per_run():
    names = {job_name(r) for r in ("run-1", "run_1", "RUN-1", "x" * 100, "a" * 100)}
    assert len(names) == 5 and all(len(n) <= 47 and n == n.lower() for n in names)


@pytest.mark.parametrize("kw, key", [
    ({"pools": "{}"}, "launch.image"),
    ({"s3_secret": ""}, "launch.s3_secret"),
])
def test_missing_pool_or_secret_is_a_config_error(kw, key):
    with pytest.raises(ConfigError) as err:
        spec(**kw)
    assert err.value.key == key


@pytest.mark.parametrize("kw, key", [
    ({"pools": "not json"}, "pools"),
    ({"nodes": 0}, "nodes"),
    ({"device": "tpu"}, "device"),
    ({"labels": ("no-equals",)}, "labels"),
])
def test_bad_launch_settings_name_their_key(kw, key):
    with pytest.raises(ConfigError) as err:
        LaunchConfig(**kw)
    assert err.value.key == key


DIGEST = "sha256:" + "0123456789abcdef" * 4


def _pinned_pools(reference):
    pools = json.loads(POOLS)
    pools["ascend"]["image"] = reference
    return json.dumps(pools)


def test_a_pinned_worker_image_tells_the_pods_its_digest():
    built = spec(pools=_pinned_pools(f"r/mindzoo-ascend:1@{DIGEST}"))
    container = job_manifest(built)["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"r/mindzoo-ascend:1@{DIGEST}"
    assert {e["name"]: e.get("value") for e in container["env"]}["MINDZOO_IMAGE_DIGEST"] == DIGEST
    assert "MINDZOO_IMAGE_DIGEST" not in spec().env  # a tag alone: the digest is unknown, never guessed
    with pytest.raises(ConfigError, match=r"^launch.image: expected sha256:<64 hex digits> \(got 'sha256:xyz'\)"):
        spec(pools=_pinned_pools("r/mindzoo-ascend:1@sha256:xyz"))


def test_the_launch_kind_picks_the_engines_runtime_unless_one_is_named():
    assert (spec().kind, spec().queue) == ("job", "")
    built = spec(kind="trainjob", queue="team-a")
    assert (built.kind, built.runtime, built.queue) == ("trainjob", "mindzoo-mindspore", "team-a")
    cfg = TrainConfig(dataset="s3://b/datasets/d", run_id="run-1", device="cpu", engine="torch")
    torch = build_spec(cfg, LaunchConfig(nodes=2, pools=POOLS, s3_secret="s", namespace="ml", kind="trainjob"),
                       StorageConfig(), TrackingConfig())
    assert torch.runtime == "mindzoo-torch"
    assert spec(kind="trainjob", runtime="team-runtime").runtime == "team-runtime"


def test_an_unknown_launch_kind_is_one_config_error():
    with pytest.raises(ConfigError) as err:
        LaunchConfig(kind="jobset")
    assert err.value.key == "kind" and "job, trainjob" in str(err.value)
