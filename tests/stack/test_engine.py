"""A trivial container through the container engine's Docker-compatible socket."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile

import pytest

pytestmark = [pytest.mark.control, pytest.mark.container]
SMOKE_IMAGE = "localhost/mindzoo-smoke:latest"


def _busybox_rootfs() -> bytes:
    """A one-binary root filesystem (Debian's busybox-static): no registry needed."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(busybox):
        pytest.fail("busybox-static is missing: run `make system` (apt-get install busybox-static)")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(busybox, arcname="bin/busybox")
        for applet in ("sh", "echo", "cat"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    return buf.getvalue()


@pytest.fixture(scope="module")
def smoke_image(stack):
    if stack.engine == "podman":
        from mindzoo.stack.engine import podman_env

        subprocess.run(["podman", "import", "--change", "ENV PATH=/bin", "-", SMOKE_IMAGE],
                       input=_busybox_rootfs(), check=True, capture_output=True,
                       env={**os.environ, **podman_env()})
    else:
        subprocess.run(["docker", "import", "--change", "ENV PATH=/bin", "-", SMOKE_IMAGE],
                       input=_busybox_rootfs(), check=True, capture_output=True)
    return SMOKE_IMAGE


def test_runs_a_container_through_the_docker_api(stack, smoke_image):
    import docker

    client = docker.DockerClient(base_url=stack.engine_socket)
    assert client.ping()
    output = client.containers.run(smoke_image, ["sh", "-c", "echo hello from $(cat /etc/hostname | wc -c)"],
                                   remove=True, network_mode="host")
    assert output.decode().startswith("hello from")
    assert any(SMOKE_IMAGE in tag for image in client.images.list() for tag in image.tags)
