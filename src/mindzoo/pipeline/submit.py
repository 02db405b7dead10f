"""Submit a compiled pipeline to a Kubeflow Pipelines server (``kfp.Client``)."""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mindzoo.errors import MindzooError
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


def submit(cfg: SubmitConfig, pipeline_cfg: PipelineConfig, say: Callable[[str], None]) -> str:
    """Create the run; with ``wait``, fail unless it succeeds. Returns the run id."""
    import kfp

    with tempfile.TemporaryDirectory(prefix="mindzoo-submit-") as tmp:
        path = package(cfg, pipeline_cfg, Path(tmp))
        host = cfg.host or os.environ.get("KF_PIPELINES_ENDPOINT") or None
        token = cfg.token or os.environ.get("KF_PIPELINES_TOKEN") or None
        try:
            with warnings.catch_warnings():  # kfp's FutureWarning about v1 servers is noise on a one-line CLI
                warnings.simplefilter("ignore")
                client = kfp.Client(host=host, namespace=cfg.namespace or "kubeflow", existing_token=token)
            result = client.create_run_from_pipeline_package(
                str(path), arguments={k: parse_value(v) for k, v in cfg.arguments().items()},
                run_name=cfg.run_name or None, experiment_name=cfg.experiment, namespace=cfg.namespace or None,
                pipeline_root=cfg.pipeline_root or None, service_account=cfg.service_account or None)
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
        raise MindzooError(f"run {result.run_id} ended {state}")
    say(f"run {result.run_id} succeeded")


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:300]}" if text else type(err).__name__
