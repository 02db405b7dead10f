"""The GPU and Ascend images, built (`make images-accel`) and run on this machine, which has no accelerator.

What can be proven without one: the GPU image imports both engines, torch reports the CUDA it was built for
(the lock's), every shared library of MindSpore's GPU plugin and of its CUDA 11 userland resolves inside the
image except the driver's own libcuda.so.1 (the NVIDIA container toolkit mounts that), and a train step runs
on the CPU with either engine (and with MindSpore in the Ascend image, which has no torch). The Ascend
image, without the node's driver and CANN, stops a `--device ascend` step with one line saying what is
missing and what to mount; with them mounted, its wrapper loads CANN's environment and the step gets past
that check.

Run by `make test-images` (`-m accelimages`); `make test` leaves them out (tests/conftest.py).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.control, pytest.mark.container, pytest.mark.accelimages]
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from components import images  # noqa: E402 - the single source of image names

SITE = "/opt/mindzoo/lib/python3.11/site-packages"
PLUGIN = f"{SITE}/mindspore/lib/plugin"
CUDA11 = "/opt/mindzoo/cuda11"
DRIVER = "libcuda.so.1"  # the node's, mounted by the NVIDIA container toolkit: absent on a machine without GPU
MISSING_CANN = ("error: --device ascend needs the node's Ascend driver and CANN toolkit inside the container; "
                "missing: the Ascend driver (/usr/local/Ascend/driver/lib64: the Ascend Docker Runtime mounts it "
                "into containers that request an NPU); the CANN toolkit (/usr/local/Ascend/ascend-toolkit/set_env.sh "
                "or /usr/local/Ascend/cann/set_env.sh: mount the node's /usr/local/Ascend/ascend-toolkit read-only "
                "at the same path)")

# ldd over every library of MindSpore's GPU plugin and of the CUDA 11 folder, and over torch's CUDA library:
# {library: {needed soname: resolved path or "not found"}}.
LDD = f"""
import glob, json, os, subprocess
libs = [*glob.glob("{PLUGIN}/libmindspore_gpu.so*"), *glob.glob("{PLUGIN}/gpu*/*.so*"),
        *glob.glob("{CUDA11}/nvidia/*/lib/*.so*"), "{SITE}/torch/lib/libtorch_cuda.so"]
out = {{}}
for lib in libs:
    deps = {{}}
    for line in subprocess.run(["ldd", lib], capture_output=True, text=True, check=True).stdout.splitlines():
        name, arrow, where = line.strip().partition(" => ")
        if arrow:
            where = where.split(" (")[0].strip()
            deps[name] = where if where == "not found" else os.path.normpath(where)
    out[lib] = deps
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def engine(stack):
    import docker

    return docker.DockerClient(base_url=stack.engine_socket)


def run(engine, image, *args, entrypoint=None, environment=None, volumes=None, timeout=600):
    if not any(image in tag for found in engine.images.list() for tag in found.tags):
        pytest.fail(f"{image} is not built: run `make images-accel` (`make test-images` builds it first)")
    container = engine.containers.run(image, list(args), entrypoint=entrypoint, detach=True, network_mode="host",
                                      environment=environment or {}, volumes=volumes or {})
    try:
        code = container.wait(timeout=timeout)["StatusCode"]
        return (code, container.logs(stdout=True, stderr=False).decode(),
                container.logs(stdout=False, stderr=True).decode())
    finally:
        container.remove(force=True)


def pinned(name: str) -> str:
    """The version a requirements file pins for ``name``."""
    for path in ("requirements/runtime.txt", "requirements/gpu-cuda11.txt"):
        for line in (ROOT / path).read_text().splitlines():
            if line.startswith(f"{name}=="):
                return line.split("==", 1)[1]
    raise AssertionError(f"{name} is pinned nowhere")


@pytest.mark.parametrize("image, title", [(images.GPU, "mindzoo-gpu"), (images.ASCEND, "mindzoo-ascend")])
def test_entrypoint_is_the_cli_running_as_non_root(engine, image, title):
    code, out, err = run(engine, image, "--version")
    assert code == 0 and out.strip() == "mindzoo, version 0.1.0", err
    config = engine.images.get(image).attrs["Config"]
    assert config["User"] not in ("", "0", "root")
    assert config["Labels"]["org.opencontainers.image.title"] == title
    assert config["Labels"]["org.opencontainers.image.revision"] != "unknown"


def test_gpu_image_imports_both_engines_and_torch_is_built_for_the_locked_cuda(engine):
    script = ("import json, mindspore, torch; print(json.dumps({'torch': torch.__version__, 'cuda': torch.version.cuda,"
              " 'mindspore': mindspore.__version__, 'cudnn': torch.backends.cudnn.version()}))")
    code, out, err = run(engine, images.GPU, "-c", script, entrypoint="python3")
    assert code == 0, err
    found = json.loads(out)
    print(f"GPU image: torch {found['torch']} built for CUDA {found['cuda']} (cuDNN {found['cudnn']}), "
          f"MindSpore {found['mindspore']} (GPU plugin for CUDA 11 + cuDNN 8 from {CUDA11})")
    assert found["torch"].split("+")[0] == pinned("torch") and found["mindspore"] == pinned("mindspore")
    # torch's CUDA is the lock's CUDA runtime wheel (13.0.x -> "13.0"): the userland images/README.md documents.
    assert found["cuda"] == ".".join(pinned("nvidia-cuda-runtime").split(".")[:2])


def test_gpu_plugin_libraries_resolve_inside_the_image_except_the_driver(engine):
    code, out, err = run(engine, images.GPU, "-c", LDD, entrypoint="python3")
    assert code == 0, err
    libs = json.loads(out)
    gpu_plugin = f"{PLUGIN}/libmindspore_gpu.so.11.6"
    assert gpu_plugin in libs and not any("11.1" in lib or "ascend" in lib for lib in libs), sorted(libs)
    assert sum(lib.startswith(CUDA11) for lib in libs) >= 15  # cudart, cuBLAS(Lt), cuDNN 8 (7), cuFFT, ...
    unresolved = {(lib, dep) for lib, deps in libs.items() for dep, where in deps.items() if where == "not found"}
    # Only the driver is missing, and only where it is linked directly: nothing else a GPU would not bring.
    assert {dep for _, dep in unresolved} <= {DRIVER}, sorted(unresolved)
    assert (gpu_plugin, DRIVER) in unresolved
    # MindSpore's CUDA 11 libraries come from the cu11 folder, torch's from its own CUDA 13 wheels, though
    # both ship a libcurand.so.10: each engine gets its own.
    plugin_deps = libs[gpu_plugin]
    for soname in ("libcudart.so.11.0", "libcublas.so.11", "libcudnn.so.8", "libcufft.so.10", "libcurand.so.10",
                   "libcusolver.so.11", "libcusparse.so.11", "libnvrtc.so.11.2"):
        assert plugin_deps[soname].startswith(f"{CUDA11}/nvidia/"), (soname, plugin_deps.get(soname))
    torch_deps = libs[f"{SITE}/torch/lib/libtorch_cuda.so"]
    assert torch_deps["libcurand.so.10"].startswith(f"{SITE}/nvidia/"), torch_deps["libcurand.so.10"]
    assert torch_deps["libcudart.so.13"].startswith(f"{SITE}/nvidia/")


@pytest.fixture(scope="module")
def digits(stack, tmp_path_factory):
    """The bundled digits, converted by the real preprocess step into a bucket of the test stack."""
    from minio import Minio

    from mindzoo.storage import MANIFEST, S3Uri, Storage

    bucket = "accel-images"
    client = Minio(stack.s3_endpoint, stack.access_key, stack.secret_key, secure=False)
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket)
    raw = tmp_path_factory.mktemp("digits")
    stack.cli("datasets", "make-digits", "--format", "cifar10", str(raw / "digits"), env="runtime")
    stack.cli("preprocess", "--source", str(raw / "digits"), "--output", f"s3://{bucket}/datasets",
              "--no-tracking-enabled", env="runtime")
    keys = Storage.connect().list(S3Uri(bucket, "datasets"))
    return bucket, f"s3://{bucket}/" + next(k.rsplit("/", 1)[0] for k in keys if k.endswith(MANIFEST))


@pytest.mark.parametrize("image, train_engine", [(images.GPU, "mindspore"), (images.GPU, "torch"),
                                                  (images.ASCEND, "mindspore")])
def test_train_step_runs_on_the_cpu_fallback(engine, stack, digits, image, train_engine):
    from mindzoo.datasets import DIGITS_TRAINING
    from mindzoo.storage import S3Uri, Storage

    bucket, dataset = digits
    run_id = f"{image.rsplit('/', 1)[-1].split(':')[0]}-{train_engine}"
    code, _, err = run(engine, image, "train", "--dataset", dataset, "--output", f"s3://{bucket}/runs",
                       "--run-id", run_id, *DIGITS_TRAINING.argv(epochs=False), "--set", "epochs=1",
                       "--steps-per-epoch", "2", "--no-final-eval", "--engine", train_engine, "--device", "cpu",
                       "--no-tracking-enabled",
                       environment={"AWS_ACCESS_KEY_ID": stack.access_key, "AWS_SECRET_ACCESS_KEY": stack.secret_key,
                                    "MINDZOO_S3_ENDPOINT": stack.s3_endpoint})
    assert code == 0, err[-3000:]
    published = list(Storage.connect().list(S3Uri(bucket, f"runs/{run_id}")))
    assert f"runs/{run_id}/model/MANIFEST.json" in published, published  # the trained model, published


def test_ascend_image_has_mindspores_ascend_plugin_and_no_cuda(engine):
    script = ("import glob, importlib.util, mindspore; from mindspore import nn, Tensor; import numpy as np; "
              f"print(mindspore.__version__, importlib.util.find_spec('torch'), "
              f"len(glob.glob('{PLUGIN}/ascend/*')) > 0, glob.glob('{PLUGIN}/*gpu*'), "
              "nn.Dense(4, 2)(Tensor(np.ones((1, 4), np.float32))).shape)")
    code, out, err = run(engine, images.ASCEND, "-c", script, entrypoint="python3")
    assert code == 0, err
    assert out.split() == [pinned("mindspore"), "None", "True", "[]", "(1,", "2)"]


def test_ascend_image_without_the_nodes_cann_says_what_to_mount_in_one_line(engine):
    code, out, err = run(engine, images.ASCEND, "train", "--device", "ascend", "--dataset", "s3://nowhere/x",
                         "--output", "s3://nowhere/runs")
    assert code == 2
    assert err.splitlines() == [MISSING_CANN] and out == ""


def test_ascend_image_wrapper_loads_a_mounted_toolkit(engine):
    """With a driver folder and a toolkit whose set_env.sh exports what CANN's does, the wrapper sources it and
    the step gets past the check (to the next thing this machine lacks: an object store)."""
    fake = Path(tempfile.mkdtemp(prefix="mindzoo-fake-ascend-"))
    try:
        (fake / "driver" / "lib64").mkdir(parents=True)
        (fake / "ascend-toolkit").mkdir()
        (fake / "ascend-toolkit" / "set_env.sh").write_text("export ASCEND_OPP_PATH=/usr/local/Ascend/opp\n")
        for path in (fake, *fake.rglob("*")):
            path.chmod(0o755)  # the image's user (uid 10001) reads the mount
        code, _, err = run(engine, images.ASCEND, "train", "--device", "ascend", "--dataset", "s3://nowhere/x",
                           "--output", "s3://nowhere/runs",
                           volumes={str(fake): {"bind": "/usr/local/Ascend", "mode": "ro"}})
    finally:
        shutil.rmtree(fake)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0 and len(lines) == 1 and "Ascend" not in lines[0], err
    assert re.match(r"error: no object store configured", lines[0]), lines
