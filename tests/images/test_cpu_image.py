"""The CPU runtime image, run through the container engine's Docker-compatible socket."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.control, pytest.mark.container]
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from components import images  # noqa: E402 - the single source of image names


@pytest.fixture(scope="module")
def engine(stack):
    import docker

    client = docker.DockerClient(base_url=stack.engine_socket)
    if not any(images.CPU in tag for image in client.images.list() for tag in image.tags):
        pytest.fail(f"{images.CPU} is not built: run `make images` (make test builds it first)")
    return client


def run(engine, *args, entrypoint=None):
    container = engine.containers.run(images.CPU, list(args), entrypoint=entrypoint, detach=True,
                                      network_mode="host")
    try:
        code = container.wait(timeout=300)["StatusCode"]
        return code, container.logs(stdout=True, stderr=False).decode(), container.logs(
            stdout=False, stderr=True).decode()
    finally:
        container.remove(force=True)


def test_entrypoint_is_the_cli_running_as_non_root(engine):
    code, out, _ = run(engine, "--version")
    assert code == 0 and out.strip() == "mindzoo, version 0.1.0"
    config = engine.images.get(images.CPU).attrs["Config"]
    assert config["User"] not in ("", "0", "root")
    assert config["Labels"]["org.opencontainers.image.version"] == images.VERSION
    assert config["Labels"]["org.opencontainers.image.revision"] != "unknown"


def python_words(engine, script: str) -> list[str]:
    """The words a Python script prints in the image (it must exit 0)."""
    code, out, err = run(engine, "-c", script, entrypoint="python3")
    assert code == 0, err
    return out.split()


def test_mindspore_and_torch_compute_inside(engine):
    assert python_words(engine, "import mindspore as ms, numpy as np, torch; from mindspore import nn, Tensor; "
                        "print(nn.Dense(4, 2)(Tensor(np.ones((1, 4), np.float32))).shape, torch.ones(2).sum().item())"
                        ) == ["(1,", "2)", "2.0"]


def test_the_jpeg_crop_decoder_is_built_and_no_compiler_is_left(engine):
    assert python_words(engine, "import shutil; from mindzoo.data import cropdecode; "
                        "print(cropdecode.decoder(), shutil.which('gcc'), shutil.which('cc'))"
                        ) == ["libjpeg-turbo", "None", "None"]


def test_bad_input_inside_the_container_is_one_error_line(engine):
    code, _, err = run(engine, "storage", "ls", "s3://x", "--storage-retry-seconds", "-1")
    assert code != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == ["error: storage.retry_seconds: must be >= 0"]
    code, _, err = run(engine, "stack", "up")  # the servers are the control environment's business
    assert code != 0 and err.strip().startswith("error: `mindzoo stack up` needs the control environment")
