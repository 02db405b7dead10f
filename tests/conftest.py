"""Shared fixtures: which environment runs which test, and the real local stack.

mindzoo has two Python environments that cannot merge (protobuf pins), so
``make test`` runs pytest once in each. A test module says where it belongs
with ``pytestmark = pytest.mark.runtime`` or ``pytest.mark.control``; unmarked
modules are pure logic and run in the runtime environment. A module is only
*collected* in its own environment (its imports may not exist in the other).
A third, small environment (``.venv-mlmd``: the ML Metadata wheel, protobuf 4)
runs the modules marked ``pytest.mark.mlmd``.

The end-to-end tests of the Kubeflow Pipelines backend (``pytest.mark.kfpbackend``) and
the accelerator images' tests (``pytest.mark.accelimages``) are not part of ``make test``:
their modules are collected only when the marker expression asks for them (``make test-e2e``,
``make test-images``; see OPT_IN_MARKERS).

The ``stack`` fixture starts the real MinIO, MLflow server and container
engine on free loopback ports in a private state folder, through the control
environment's ``mindzoo stack up`` — the same command users run. If the stack
cannot start, the tests that need it fail loudly; they never skip.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = importlib.util.find_spec("mindspore") is not None
CONTROL = importlib.util.find_spec("kfp") is not None
MLMD = importlib.util.find_spec("ml_metadata") is not None
CONTROL_BIN = ROOT / ".venv-control" / "bin" / "mindzoo"
RUNTIME_BIN = ROOT / ".venv" / "bin" / "mindzoo"


def _module_env(path: Path) -> str:
    head = path.read_text(errors="replace")[:4000]
    if "pytest.mark.control" in head:
        return "control"
    if "pytest.mark.mlmd" in head:
        return "mlmd"
    if "pytest.mark.runtime" in head:
        return "runtime"
    return "runtime"  # pure-logic modules run once, in the runtime environment


#: Markers whose modules are collected only when ``-m`` names them, never in `make test`: the end-to-end tests
#: of a KFP backend (`make test-e2e`) and the accelerator images' tests (`make test-images`), each of which
#: needs more multi-GB builds than CI's budget holds.
OPT_IN_MARKERS = ("kfpbackend", "accelimages")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    head = collection_path.read_text(errors="replace")[:4000]
    asked = config.getoption("markexpr") or ""
    if any(f"pytest.mark.{marker}" in head and marker not in asked for marker in OPT_IN_MARKERS):
        return True
    env = _module_env(collection_path)
    if (env == "control" and not CONTROL) or (env == "runtime" and not RUNTIME) or (env == "mlmd" and not MLMD):
        return True
    return None


def pytest_report_header(config: pytest.Config) -> str:
    envs = [name for name, present in (("runtime", RUNTIME), ("control", CONTROL), ("mlmd", MLMD)) if present]
    return f"mindzoo environment: {', '.join(envs) or 'none'} ({sys.prefix})"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Stack:
    state_dir: Path
    s3_endpoint: str
    mlflow_uri: str
    engine: str
    engine_socket: str
    access_key: str
    secret_key: str
    ports: dict[str, int]

    def cli(self, *args: str, env: str = "control", check: bool = True, timeout: float = 300,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run ``mindzoo ARGS`` from an environment against this stack."""
        binary = CONTROL_BIN if env == "control" else RUNTIME_BIN
        proc = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "MINDZOO_STATE_DIR": str(self.state_dir), **(extra_env or {})})
        if check and proc.returncode != 0:
            raise AssertionError(f"mindzoo {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
        return proc

    def up_args(self) -> list[str]:
        return _up_args(self.ports)


def _up_args(ports: dict[str, int]) -> list[str]:
    return ["stack", "up", "--minio-port", str(ports["minio"]), "--minio-console-port", str(ports["console"]),
            "--mlflow-port", str(ports["mlflow"])]


RAM_DISK = Path("/dev/shm")
RAM_PREFIX = "mindzoo-tests-"


def ram_folder(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A fresh folder in RAM (``/dev/shm``) when it has room, else under pytest's temporary folder.

    MinIO refuses every write once its drive is 99 % full, and on a machine whose disk is
    shared with others that can happen mid-run however little the tests write. The test
    stack's objects are small and thrown away, so they live in RAM: the server under test
    is the same, only its drive is the machine's memory. Folders of sessions that were
    killed are removed here too (their pid is in the name).
    """
    from mindzoo.lease import pid_alive

    try:
        stats = os.statvfs(RAM_DISK)
        room = stats.f_bavail * stats.f_frsize
    except OSError:
        room = 0
    if room < 4 << 30:
        return tmp_path_factory.mktemp(name)
    for stale in RAM_DISK.glob(f"{RAM_PREFIX}*"):
        pid = stale.name[len(RAM_PREFIX):].split("-")[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            # A killed session's servers outlive it: stop them before their folder goes.
            subprocess.run([str(CONTROL_BIN), "stack", "down"], capture_output=True, timeout=120,
                           env={**os.environ, "MINDZOO_STATE_DIR": str(stale)})
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{RAM_PREFIX}{os.getpid()}-{name}-", dir=RAM_DISK))


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The real local stack, started for this test session and stopped after it."""
    if not CONTROL_BIN.exists():
        pytest.fail(f"the real stack needs the control environment ({CONTROL_BIN} missing): run `make setup`")
    state = ram_folder(tmp_path_factory, "stack-state")
    ports = {"minio": free_port(), "console": free_port(), "mlflow": free_port()}
    env = {**os.environ, "MINDZOO_STATE_DIR": str(state)}
    proc = subprocess.run([str(CONTROL_BIN), *_up_args(ports)], capture_output=True, text=True, env=env, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"the real local stack did not start:\n{proc.stderr}")
    info = json.loads(subprocess.run([str(CONTROL_BIN), "stack", "status", "--json"], capture_output=True,
                                     text=True, env=env, timeout=60).stdout)
    creds = json.loads((state / "credentials.json").read_text())
    saved = os.environ.get("MINDZOO_STATE_DIR")
    os.environ["MINDZOO_STATE_DIR"] = str(state)  # in-process steps find the stack like users' do
    try:
        yield Stack(state, info["s3_endpoint"], info["mlflow_uri"], info["engine"], info["engine_socket"],
                    creds["access_key"], creds["secret_key"], ports)
    finally:
        subprocess.run([str(CONTROL_BIN), "stack", "down"], env=env, capture_output=True, timeout=120)
        if state.is_relative_to(RAM_DISK):
            shutil.rmtree(state, ignore_errors=True)
        if saved is None:
            os.environ.pop("MINDZOO_STATE_DIR", None)
        else:
            os.environ["MINDZOO_STATE_DIR"] = saved


@pytest.fixture
def bucket(stack: Stack) -> str:
    """A fresh bucket per test, so tests never see each other's objects."""
    from minio import Minio

    name = f"t-{os.urandom(4).hex()}"
    Minio(stack.s3_endpoint, stack.access_key, stack.secret_key, secure=False).make_bucket(name)
    return name
