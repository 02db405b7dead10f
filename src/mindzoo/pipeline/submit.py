"""Submit a compiled pipeline to a Kubeflow Pipelines server (``kfp.Client``)."""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mindzoo.errors import ConfigError, MindzooError
from mindzoo.pipeline.config import PipelineConfig, SubmitConfig


def parse_value(text: str) -> Any:
    """As `kfp run create key=value` does since 2.17: JSON first (numbers, booleans, lists), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def package(cfg: SubmitConfig, pipeline_cfg: PipelineConfig, work: Path) -> Path:
    """The YAML to submit: the given file, or `train`/`infer` compiled now."""
    from mindzoo.pipeline.compile import PIPELINES, compile_to

    if cfg.package in PIPELINES:
        return compile_to(cfg.package, pipeline_cfg, work / f"{cfg.package}_pipeline.yaml")
    path = Path(cfg.package).expanduser()
    if not path.is_file():
        raise MindzooError(f"no such pipeline package: {cfg.package} (give a compiled YAML, or train / infer)")
    return path


def pipeline_arguments(path: Path, items: tuple[str, ...]) -> dict[str, Any]:
    """``--param`` items as the run's arguments, checked against the package's parameters.

    The CLI splits flag values at commas, so ``overrides=epochs=3,batch_size=64`` arrives as two items; an
    item whose key is not a parameter of the pipeline continues the one before it. A first item that is
    not a parameter is one error naming the ones there are (KFP itself answers only HTTP 400).
    """
    import yaml

    try:
        spec = next(doc for doc in yaml.safe_load_all(path.read_text()) if doc and "root" in doc)
        names = set(spec["root"].get("inputDefinitions", {}).get("parameters", {}))
    except (OSError, StopIteration, AttributeError, TypeError, yaml.YAMLError):
        raise MindzooError(f"{path} is not a compiled pipeline (no root.inputDefinitions)") from None
    joined: list[list[str]] = []
    for item in items:
        key, value = (part.strip() if i == 0 else part for i, part in enumerate(item.split("=", 1)))
        if key in names:
            joined.append([key, value])
        elif joined:
            joined[-1][1] += f",{item}"
        else:
            raise ConfigError("pipeline.param", f"{key!r} is not a parameter of {path.name} "
                                                f"(it takes: {', '.join(sorted(names))})")
    return {key: parse_value(value) for key, value in joined}


def _tasks(spec: dict) -> Any:
    """(task name, task, its component) of every task of a compiled spec, in the root DAG and nested ones."""
    components = spec.get("components", {})
    for dag in [spec.get("root", {}).get("dag", {})] + [c.get("dag", {}) for c in components.values()]:
        for name, task in dag.get("tasks", {}).items():
            yield name, task, components.get(task.get("componentRef", {}).get("name", ""), {})


def probe(host: str, token: str | None) -> None:
    """Ask the server's healthz once. kfp.Client asks it five times, 5 s apart, logging a traceback each time,
    and then reports only that it gave up: this keeps the server's own answer (its HTTP status) for the error."""
    import kfp_server_api

    api = kfp_server_api.ApiClient(kfp_server_api.Configuration(host=host.rstrip("/")))
    if token:
        api.set_default_header("Authorization", f"Bearer {token}")
    kfp_server_api.HealthzServiceApi(api).healthz_service_get_healthz(_request_timeout=30)


def submit(cfg: SubmitConfig, pipeline_cfg: PipelineConfig, say: Callable[[str], None]) -> str:
    """Create the run; with ``wait``, fail unless it succeeds. Returns the run id."""
    import kfp

    with tempfile.TemporaryDirectory(prefix="mindzoo-submit-") as tmp:
        path = package(cfg, pipeline_cfg, Path(tmp))
        arguments = pipeline_arguments(path, cfg.param)
        host = cfg.host or os.environ.get("KF_PIPELINES_ENDPOINT") or None
        token = cfg.token or os.environ.get("KF_PIPELINES_TOKEN") or None
        try:
            if host:
                probe(host, token)
            with warnings.catch_warnings():  # kfp's FutureWarning about v1 servers is noise on a one-line CLI
                warnings.simplefilter("ignore")
                client = kfp.Client(host=host, namespace=cfg.namespace or "kubeflow", existing_token=token)
            result = client.create_run_from_pipeline_package(
                str(path), arguments=arguments,
                run_name=cfg.run_name or None, experiment_name=cfg.experiment, namespace=cfg.namespace or None,
                pipeline_root=cfg.pipeline_root or None, service_account=cfg.service_account or None,
                enable_caching=True if cfg.cache else None)  # None: the compiled per-task setting (off)
        except Exception as err:  # noqa: BLE001 - kfp/urllib3/kubernetes raise many types; all mean "not submitted"
            raise MindzooError(f"could not submit to Kubeflow Pipelines at {host or '(in-cluster/kubeconfig)'}: "
                               f"{_first_line(err)}") from None
    say(f"run {result.run_id} created in experiment {cfg.experiment!r}")
    if cfg.wait:
        wait(result, cfg.timeout, say)
    return result.run_id


def wait(result: Any, timeout: int, say: Callable[[str], None]) -> None:
    """``--wait``: every way of not seeing the run succeed is one line naming the run, so it can be looked
    up (or its retries followed) on the server."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = result.wait_for_run_completion(timeout=timeout)
    except TimeoutError:
        raise MindzooError(f"run {result.run_id} did not finish within {timeout}s (still running on the server; "
                           "follow it there)") from None
    except Exception as err:  # noqa: BLE001 - the client lost the server while the run goes on without us
        raise MindzooError(f"lost track of run {result.run_id} while waiting: {_first_line(err)}") from None
    state = getattr(run, "state", None) or getattr(getattr(run, "run", None), "status", "unknown")
    if str(state).upper() not in ("SUCCEEDED", "SUCCESS"):
        failed = failed_tasks(run)
        raise MindzooError(f"run {result.run_id} ended {state}" + (f": failed task(s) {failed}" if failed else ""))
    say(f"run {result.run_id} succeeded")


def step_tasks(spec: Any) -> set[str]:
    """Names of the pipeline's container tasks (its steps), from the compiled spec: a run's task details also
    list the DAGs around them (root, condition branches), Argo's retry nodes and KFP's driver pods."""
    if isinstance(spec, dict) and "pipeline_spec" in spec:  # the API's form when a platform spec came with it
        spec = spec["pipeline_spec"]
    if not isinstance(spec, dict):
        return set()
    return {name for name, _, component in _tasks(spec) if "executorLabel" in component}


def failed_tasks(run: Any) -> str:
    """The run's failed steps, by their task names (with the first line of an error KFP recorded)."""
    steps = step_tasks(getattr(run, "pipeline_spec", None))
    details = getattr(getattr(run, "run_details", None), "task_details", None) or []
    names = []
    for task in details:
        name = getattr(task, "display_name", None)
        if name in steps and str(getattr(task, "state", "")).upper() == "FAILED" and name not in names:
            message = str(getattr(getattr(task, "error", None), "message", "") or "").strip().splitlines()
            names.append(name + (f" ({message[0][:200]})" if message else ""))
    return ", ".join(names)


def _first_line(err: Exception) -> str:
    status = getattr(err, "status", None)  # kfp_server_api's ApiException: the server answered with an error
    if isinstance(status, int) and status >= 400:
        return f"HTTP {status} {getattr(err, 'reason', '') or ''}".strip()
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:300]}" if text else type(err).__name__
