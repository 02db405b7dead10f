"""A container engine with a Docker-compatible socket (for kfp.local's DockerRunner).

Docker is used when its daemon answers. Otherwise podman serves the Docker API
on a socket in the state folder, with a containers.conf of our own (passed via
CONTAINERS_CONF, so the machine's /etc is left alone) carrying the two settings
this kind of machine needs: runc (crun refuses the hybrid cgroup layout) and
ulimits low enough for a process here to raise to.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mindzoo.config import StackConfig
from mindzoo.errors import MindzooError
from mindzoo.stack import process, state

NAME = "engine"

CONTAINERS_CONF = """\
[engine]
runtime = "runc"

[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
"""


def containers_conf() -> Path:
    path = state.root() / "containers.conf"
    if not path.exists() or path.read_text() != CONTAINERS_CONF:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(CONTAINERS_CONF)
    return path


def podman_env() -> dict[str, str]:
    """Environment for any podman command mindzoo runs (build, import, service)."""
    return {"CONTAINERS_CONF": str(containers_conf())}


def docker_socket() -> str | None:
    """The Docker daemon's socket if one answers (DOCKER_HOST or the default)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://") and process.http_ok(host):
        return host
    return None


def start_podman(cfg: StackConfig) -> process.Service:
    """Serve podman's Docker-compatible API on a socket in the state folder."""
    podman = shutil.which("podman")
    if podman is None:
        raise MindzooError("no container engine: install podman (apt-get install podman runc) or Docker")
    sock = state.root() / "podman" / "podman.sock"
    sock.parent.mkdir(parents=True, exist_ok=True)
    sock.unlink(missing_ok=True)
    log = state.logs_dir() / "podman.log"
    pid = process.spawn([podman, "system", "service", "--time=0", f"unix://{sock}"], log, env=podman_env())
    url = f"unix://{sock}"
    return process.Service(NAME, pid, url, url, str(log))
