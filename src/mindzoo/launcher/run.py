"""Create, watch and clean up a distributed launch on Kubernetes.

Rank 0's log is streamed as it runs; a failed pod fails the launch with its
log tail; the Job (and through owner references its pods and Service) is
deleted at the end whatever happened, and TTL covers a launcher that dies.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mindzoo.errors import MindzooError
from mindzoo.launcher.spec import LABEL, LaunchSpec, job_manifest, service_manifest

COMPLETION_INDEX_LABEL = "batch.kubernetes.io/job-completion-index"


@dataclass(frozen=True)
class LaunchResult:
    succeeded: int
    seconds: float


class LaunchFailed(MindzooError):
    """A worker failed, or the launch timed out."""


def launch(spec: LaunchSpec, api_client: Any, say: Callable[[str], None] = print,
           poll_s: float = 2.0, cleanup: bool = True) -> LaunchResult:
    from kubernetes import client

    batch, core = client.BatchV1Api(api_client), client.CoreV1Api(api_client)
    started = time.monotonic()
    job = batch.create_namespaced_job(spec.namespace, job_manifest(spec))
    try:
        core.create_namespaced_service(spec.namespace, service_manifest(spec, job.metadata.uid))
        say(f"launched job {spec.namespace}/{spec.name}: {spec.nodes} node(s), image {spec.image}")
        streamer = _stream_rank0(core, spec, say)
        result = _wait(batch, core, spec, started, poll_s)
        streamer.join(timeout=5)
        return result
    finally:
        if cleanup:
            delete(spec, api_client)


def _wait(batch: Any, core: Any, spec: LaunchSpec, started: float, poll_s: float) -> LaunchResult:
    seen: dict[str, str] = {}  # index -> pod name, so a worker whose pod vanishes can still be named
    while True:
        status = batch.read_namespaced_job(spec.name, spec.namespace).status  # jobs/status needs more RBAC
        if (status.failed or 0) > 0 or _condition(status, "Failed"):
            raise LaunchFailed(_failure_message(core, spec, status, seen))
        seen.update({_index(p): p.metadata.name for p in _pods(core, spec) if p.metadata.deletion_timestamp is None})
        if (status.succeeded or 0) >= spec.nodes or _condition(status, "Complete"):
            return LaunchResult(status.succeeded or spec.nodes, time.monotonic() - started)
        if time.monotonic() - started > spec.timeout_s:
            raise LaunchFailed(f"launch {spec.name} timed out after {spec.timeout_s:.0f}s")
        time.sleep(poll_s)


def _condition(status: Any, kind: str) -> bool:
    return any(c.type == kind and c.status == "True" for c in (status.conditions or []))


def _pods(core: Any, spec: LaunchSpec) -> list[Any]:
    return core.list_namespaced_pod(spec.namespace, label_selector=f"{LABEL}={spec.name}").items


def _index(pod: Any) -> str:
    labels = pod.metadata.labels or {}
    annotations = pod.metadata.annotations or {}
    return labels.get(COMPLETION_INDEX_LABEL) or annotations.get(COMPLETION_INDEX_LABEL, "?")


def _failure_message(core: Any, spec: LaunchSpec, status: Any, seen: dict[str, str] | None = None) -> str:
    pods, seen = _pods(core, spec), seen or {}
    reason = next((c.message or c.reason for c in (status.conditions or []) if c.type == "Failed"), "failed")
    # A worker deleted mid-run leaves no pod behind, and the Job controller then stops the others (they may
    # fail as they go): a vanished worker is the cause, then a failed one, then an evicted or terminating one.
    vanished = sorted((i for i in seen if i not in {_index(p) for p in pods}), key=_rank)
    if vanished:
        return (f"worker {vanished[0]} ({seen[vanished[0]]}) was deleted before it finished; "
                f"launch {spec.name} failed: {reason}")
    failed = [p for p in pods if p.status.phase == "Failed"]
    if failed:
        pod = sorted(failed, key=lambda p: _rank(_index(p)))[0]
        return f"worker {_index(pod)} ({pod.metadata.name}) failed: {_log_tail(core, spec, pod.metadata.name)}"
    gone = _gone_first(pods)
    if gone is not None:
        return (f"worker {_index(gone)} ({gone.metadata.name}) was evicted or deleted before it finished; "
                f"launch {spec.name} failed: {reason}")
    return f"launch {spec.name} failed: {reason}"


def _rank(index: str) -> tuple[int, str]:
    return len(index), index  # numeric order for digit strings: 2 before 10


def _gone_first(pods: list[Any]) -> Any:
    """The pod of a worker being stopped from outside: disrupted (evicted, preempted: DisruptionTarget),
    else terminating; the lowest index of that kind."""
    disrupted = [p for p in pods if any(c.type == "DisruptionTarget" and c.status == "True"
                                        for c in p.status.conditions or [])]
    terminating = [p for p in pods if p.metadata.deletion_timestamp is not None]
    for kind in (disrupted, terminating):
        if kind:
            return sorted(kind, key=lambda p: _rank(_index(p)))[0]
    return None


def _log_tail(core: Any, spec: LaunchSpec, pod_name: str, lines: int = 20) -> str:
    try:
        log = core.read_namespaced_pod_log(pod_name, spec.namespace, tail_lines=lines, _request_timeout=10)
    except Exception as err:  # noqa: BLE001 - the log is a courtesy; the failure is the message
        return f"(log unavailable: {type(err).__name__})"
    text = [line for line in (log or "").splitlines() if line.strip()]
    return " | ".join(text[-5:]) if text else "(empty log)"


def _stream_rank0(core: Any, spec: LaunchSpec, say: Callable[[str], None]) -> threading.Thread:
    """Follow pod 0's log in the background (rank 0 prints progress and metrics)."""

    def follow() -> None:
        deadline = time.monotonic() + spec.timeout_s
        while time.monotonic() < deadline:
            pod = next((p for p in _pods(core, spec) if _index(p) == "0"), None)
            if pod is not None and pod.status.phase in ("Running", "Succeeded", "Failed"):
                try:
                    response = core.read_namespaced_pod_log(pod.metadata.name, spec.namespace, follow=True,
                                                            _preload_content=False)
                    for line in response:  # urllib3 splits the streamed chunks into lines (.stream() would not)
                        say(f"[rank0] {line.decode(errors='replace').rstrip()}")
                except Exception:  # noqa: BLE001 - log streaming must not fail the launch
                    pass
                return
            time.sleep(1.0)

    thread = threading.Thread(target=follow, daemon=True, name=f"log-{spec.name}")
    thread.start()
    return thread


def delete(spec: LaunchSpec, api_client: Any) -> None:
    """Delete the Job with foreground propagation: its pods and the owned Service go too."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    body = client.V1DeleteOptions(propagation_policy="Foreground")
    try:
        client.BatchV1Api(api_client).delete_namespaced_job(spec.name, spec.namespace, body=body)
    except ApiException as err:
        if err.status != 404:
            raise
    try:  # in case the Job was gone before the Service got its owner reference
        client.CoreV1Api(api_client).delete_namespaced_service(spec.service_name, spec.namespace)
    except ApiException as err:
        if err.status != 404:
            raise
