"""``mindzoo pipeline run-local``: the compiled train pipeline through kfp.local's DockerRunner.

The YAML that ``mindzoo pipeline compile`` writes is loaded back and run, task by
task, in the built image on the local container engine (Docker, or podman's
Docker-compatible socket: ``DOCKER_HOST``), against the local stack. kfp.local
ignores the Kubernetes part of the spec, so the runner passes what the Secret and
ConfigMap give pods on a cluster: the endpoints and the object store's keys as
environment variables. Containers use the host network to reach MinIO and MLflow
on loopback.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mindzoo.errors import ConfigError, MindzooError
from mindzoo.pipeline import kfp_local
from mindzoo.pipeline.config import PipelineConfig, RunLocalConfig
from mindzoo.runs.layout import ENV_IMAGE_DIGEST


@dataclass(frozen=True)
class LocalRun:
    root: Path
    acc_log: str  # the inference step's acc.log: the recipe's own postprocess lines
    metrics: dict[str, Any]
    pipeline_run_id: str
    mlflow_url: str
    seconds: float


def _stack() -> tuple[Any, dict[str, str]]:
    from mindzoo.stack import process, state

    endpoints = state.load_endpoints()
    minio = process.load("minio", state.services_dir())
    if not endpoints or not minio or not minio.alive():
        raise MindzooError("the local stack is not up: run `mindzoo stack up` first")
    if not endpoints.engine_socket:
        raise MindzooError("the local stack has no container engine (started with --engine none?)")
    return endpoints, state.credentials()


@contextlib.contextmanager
def _shared_files() -> Iterator[None]:
    """Task containers run as the image's non-root user and write into the bind-mounted pipeline root
    that kfp.local creates from this process: keep what it creates writable for them."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


# Folders of the image that its non-root user cannot search (Debian's /root is 0700). A bind mount
# below one of them is unreachable for the tasks; the host side's permissions do not matter, the
# folders above a mount point come from the image.
PRIVATE_IN_IMAGE = (Path("/root"),)


def pipeline_root(given: str, state: Path) -> Path:
    """The folder kfp.local bind-mounts into every task at the same path: ``given``, else a new one per
    run in the state folder, or in /var/tmp when that is private in the image (root's is under /root)."""
    if given:
        root = Path(given).expanduser().resolve()
        if private := _private(root):
            raise ConfigError("root", f"{root} is under {private}, which the tasks' non-root user cannot "
                                      "search inside the image; choose a folder elsewhere (e.g. under /var/tmp)")
        return root
    base = state.expanduser().resolve() / "pipeline-runs"
    if _private(base):
        base = Path("/var/tmp") / f"mindzoo-{os.getuid()}" / "pipeline-runs"
    return base / time.strftime("%Y%m%d-%H%M%S")


def _private(path: Path) -> Path | None:
    return next((p for p in PRIVATE_IN_IMAGE if path == p or p in path.parents), None)


def _digits(client: Any, image: str, root: Path) -> str:
    """The bundled digits as CIFAR-10 binaries under the (bind-mounted) root, written by the image itself."""
    import docker

    target = root / "data" / "digits-cifar10"
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        client.containers.run(image, ["datasets", "make-digits", "--format", "cifar10", "--force", str(target)],
                              volumes={str(root): {"bind": str(root), "mode": "rw"}}, remove=True,
                              network_mode="host")
    except docker.errors.ContainerError as err:
        lines = (err.stderr or b"").decode(errors="replace").strip().splitlines() or ["(no output)"]
        raise MindzooError(f"writing the digits in {image} failed: {lines[-1]}") from None
    return str(target)


def arguments(cfg: RunLocalConfig, source: str, endpoints: Any) -> dict[str, Any]:
    from mindzoo.pipeline.submit import parse_value

    args: dict[str, Any] = {"s3_endpoint": endpoints.s3_endpoint, "mlflow_uri": endpoints.mlflow_uri}
    if cfg.pipeline == "train":
        args.update({"source": source, "recipe": cfg.recipe, "input_size": cfg.input_size,
                     "overrides": ",".join(cfg.set), "workers": cfg.workers, "min_top1": cfg.min_top1})
    args.update({k: parse_value(v) for k, v in cfg.arguments().items()})
    return args


def run(cfg: RunLocalConfig, pipeline_cfg: PipelineConfig, say: Callable[[str], None]) -> LocalRun:
    import docker
    from kfp import components, local

    from mindzoo.paths import state_dir
    from mindzoo.pipeline.compile import compile_to, repo_root

    root = pipeline_root(cfg.root, state_dir())
    endpoints, creds = _stack()
    os.environ["DOCKER_HOST"] = endpoints.engine_socket  # kfp.local's DockerRunner uses docker.from_env()
    client = docker.DockerClient(base_url=endpoints.engine_socket)
    image, digest = _image(client, repo_root())
    with _shared_files():
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o777)  # the tasks' user (the image's, not this one) writes here through the bind mount
        source = (cfg.source or _digits(client, image, root)) if cfg.pipeline == "train" else ""
        package = compile_to(cfg.pipeline, pipeline_cfg, root / f"{cfg.pipeline}_pipeline.yaml")
        say(f"running {package} with kfp.local in {image} ({digest}; pipeline root {root})")
        # The image ID goes to every task: the card and registry entry record the image the step ran in.
        runner = local.DockerRunner(network_mode="host", entrypoint=[""], environment={
            "AWS_ACCESS_KEY_ID": creds["access_key"], "AWS_SECRET_ACCESS_KEY": creds["secret_key"],
            "MINDZOO_S3_ENDPOINT": endpoints.s3_endpoint, "MLFLOW_TRACKING_URI": endpoints.mlflow_uri,
            ENV_IMAGE_DIGEST: digest})
        # The pipeline root is the one folder kfp.local mounts into every task: the data goes there too.
        local.init(runner=runner, pipeline_root=str(root), raise_on_error=True)
        kfp_local.apply()
        started = time.time()
        try:
            task = components.load_component_from_file(str(package))(**arguments(cfg, source, endpoints))
        except RuntimeError as err:  # kfp.local: "Pipeline ... finished with status FAILURE"/"Task ... failed"
            raise MindzooError(f"local pipeline run failed: {str(err).strip().splitlines()[0]} "
                               f"(task logs above; files in {root})") from None
    seconds = time.time() - started
    acc = [line for line in (Path(task.outputs["results"].path) / "acc.log").read_text().splitlines() if line.strip()]
    acc_log = "\n".join(acc)
    run_id, url = _tracking(endpoints.mlflow_uri, started)
    return LocalRun(root, acc_log, dict(task.outputs["metrics"].metadata), run_id, url, seconds)


def _image(client: Any, root: Path) -> tuple[str, str]:
    """(the CPU image the tasks run in, its ID: ``sha256:<hex>``, which no build can write into the image itself)."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from components import images

    return images.CPU, local_image_id(client, images.CPU)


def local_image_id(client: Any, reference: str) -> str:
    """The ID (config digest) of the locally built image tagged ``reference``, as the engine reports it."""
    from mindzoo.runs.layout import check_digest

    found = [image for image in client.images.list() if reference in image.tags]
    if not found:
        raise MindzooError(f"{reference} is not built: run `make images`")
    image_id = found[0].id if found[0].id.startswith("sha256:") else f"sha256:{found[0].id}"  # podman: bare hex
    return check_digest(image_id, f"the ID of {reference}")


def _tracking(uri: str, started: float) -> tuple[str, str]:
    """The pipeline run's id (the tag its steps' MLflow runs share) and a link to its MLflow run; the bare
    server URL when MLflow cannot say (the run itself has succeeded by then: no reason to fail it)."""
    from mlflow.exceptions import MlflowException

    try:
        return _find_run(uri, started)
    except (MlflowException, OSError) as err:
        print(f"warning: could not look the run up in MLflow at {uri}: {str(err).splitlines()[0][:200]}",
              file=sys.stderr)
        return "", uri


def _find_run(uri: str, started: float) -> tuple[str, str]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, f"tags.`mindzoo.step` = 'infer' and attributes.start_time >= "
                                           f"{int(started * 1000)}", order_by=["attributes.start_time DESC"],
                              max_results=1)
    if not runs:
        return "", uri
    run_id = runs[0].data.tags.get("pipeline_run_id", "")
    # The steps' runs hang under one run of the whole pipeline when the tracking layout makes one.
    parent = client.search_runs(experiments, f"tags.pipeline_run_id = '{run_id}' and tags.`mindzoo.kind` = "
                                             "'pipeline'", max_results=1) if run_id else []
    found = (parent or runs)[0]
    return run_id, f"{uri}/#/experiments/{found.info.experiment_id}/runs/{found.info.run_id}"
