"""Create (or adopt), watch and clean up a distributed launch on Kubernetes.

Rank 0's log is streamed as it runs; a failed pod fails the launch with its log tail; the Job
(and through owner references its pods and Service) is deleted at the end whatever happened -
SIGTERM included - and TTL covers a launcher that is killed outright. Such a killed launcher's
Job keeps running: launching again with the same run id adopts it (same name, same spec digest)
instead of failing with 409, and a Job that failed meanwhile is replaced. Every API call rides out
transient errors (:mod:`.kubecall`).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mindzoo.errors import MindzooError
from mindzoo.launcher.kubecall import Backoff, call
from mindzoo.launcher.spec import LABEL, SPEC_ANNOTATION, LaunchSpec, job_manifest, service_manifest

COMPLETION_INDEX_LABEL = "batch.kubernetes.io/job-completion-index"


@dataclass(frozen=True)
class LaunchResult:
    succeeded: int
    seconds: float
    adopted: bool = False


class LaunchFailed(MindzooError):
    """A worker failed, or the launch timed out."""


class LaunchInterrupted(LaunchFailed):
    """The launcher was told to stop (SIGTERM)."""


class LaunchConflict(MindzooError):
    """A Job of this name exists that this launch did not create and may not adopt."""


def launch(spec: LaunchSpec, api_client: Any, say: Callable[[str], None] = print, poll_s: float = 2.0,
           cleanup: bool = True, fresh: Callable[[], None] | None = None,
           backoff: Backoff = Backoff()) -> LaunchResult:
    """Run ``spec`` to its end. ``fresh`` runs just before a new Job is created (not when one is adopted):
    the caller clears what an earlier attempt published there."""
    from kubernetes import client

    batch, core = client.BatchV1Api(api_client), client.CoreV1Api(api_client)
    started = time.monotonic()
    restore = _raise_on_sigterm(spec, cleanup)
    owned = False
    try:
        job = _adoptable(batch, spec, say, backoff, api_client)
        owned = True  # from here the Job is this launch's: cleanup deletes it, even mid-create
        adopted = job is not None
        job = job or _create(batch, spec, fresh, backoff)
        _create_service(core, spec, job.metadata.uid, backoff)
        verb = "adopted" if adopted else "launched"
        say(f"{verb} job {spec.namespace}/{spec.name}: {spec.nodes} node(s), image {spec.image}")
        streamer = _stream_rank0(core, spec, say, backoff)
        result = _wait(batch, core, spec, started, poll_s, say, backoff)
        streamer.join(timeout=5)
        return LaunchResult(result.succeeded, result.seconds, adopted)
    except LaunchConflict:
        owned = False  # someone else's Job: never delete it
        raise
    finally:
        try:
            if cleanup and owned:
                delete(spec, api_client, backoff)
        finally:
            restore()


def _raise_on_sigterm(spec: LaunchSpec, cleanup: bool) -> Callable[[], None]:
    """SIGTERM (the task pod deleted, the run cancelled) unwinds the launch like an error, so the Job is
    deleted (or, with cleanup off, left to be adopted). Only the main thread may set signal handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    fate = ("deleted" if cleanup else
            "left running (launch again with the same run id to adopt it; its TTL removes it otherwise)")
    fired = []

    def stop(signum: int, frame: Any) -> None:
        if not fired:  # once: a second SIGTERM must not interrupt the cleanup the first one started
            fired.append(signum)
            raise LaunchInterrupted(f"terminated by SIGTERM: job {spec.namespace}/{spec.name} {fate}")

    previous = signal.signal(signal.SIGTERM, stop)
    return lambda: signal.signal(signal.SIGTERM, previous)


def _adoptable(batch: Any, spec: LaunchSpec, say: Callable[[str], None], backoff: Backoff, api_client: Any) -> Any:
    """The Job an earlier launch of this spec left (to adopt), or None. A failed one is deleted first."""
    job = _read_job(batch, spec, backoff)
    if job is None:
        return None
    _check_ours(job, spec)
    if job.metadata.deletion_timestamp is None and not _condition(job.status, "Failed"):
        return job
    say(f"job {spec.namespace}/{spec.name} of an earlier attempt failed or is going: replacing it")
    delete(spec, api_client, backoff)
    deadline = time.monotonic() + 120
    while _read_job(batch, spec, backoff) is not None:
        if time.monotonic() > deadline:
            raise LaunchFailed(f"job {spec.namespace}/{spec.name} of an earlier attempt was not deleted in 120s")
        time.sleep(1.0)
    return None


def _read_job(batch: Any, spec: LaunchSpec, backoff: Backoff) -> Any:
    from kubernetes.client.rest import ApiException

    try:
        return call(batch.read_namespaced_job, spec.name, spec.namespace, backoff=backoff)
    except ApiException as err:
        if err.status == 404:
            return None
        raise


def _check_ours(job: Any, spec: LaunchSpec) -> None:
    want = job_manifest(spec)["metadata"]["annotations"][SPEC_ANNOTATION]
    have = (job.metadata.annotations or {}).get(SPEC_ANNOTATION)
    if have != want:
        raise LaunchConflict(f"job {spec.namespace}/{spec.name} exists and is not this launch's "
                             f"({'another spec' if have else 'not created by mindzoo launch'}): "
                             "delete it, or launch under another run id")


def _create(batch: Any, spec: LaunchSpec, fresh: Callable[[], None] | None, backoff: Backoff) -> Any:
    from kubernetes.client.rest import ApiException

    if fresh is not None:
        fresh()
    try:
        return call(batch.create_namespaced_job, spec.namespace, job_manifest(spec), backoff=backoff)
    except ApiException as err:
        if err.status != 409:
            raise
    # Created meanwhile - by this very call when its response was lost, or by a launch racing this one.
    job = _read_job(batch, spec, backoff)
    if job is None:
        raise LaunchFailed(f"job {spec.namespace}/{spec.name} existed a moment ago and is gone: launch again")
    _check_ours(job, spec)
    return job


def _create_service(core: Any, spec: LaunchSpec, owner_uid: str, backoff: Backoff) -> None:
    from kubernetes.client.rest import ApiException

    try:
        call(core.create_namespaced_service, spec.namespace, service_manifest(spec, owner_uid), backoff=backoff)
    except ApiException as err:
        if err.status != 409:  # the adopted Job's Service, created by the earlier launch
            raise


def _wait(batch: Any, core: Any, spec: LaunchSpec, started: float, poll_s: float, say: Callable[[str], None],
          backoff: Backoff) -> LaunchResult:
    seen: dict[str, str] = {}  # index -> pod name, so a worker whose pod vanishes can still be named
    replaced = 0
    while True:
        # jobs/status would need more RBAC: the Job's own GET carries its status.
        status = call(batch.read_namespaced_job, spec.name, spec.namespace, backoff=backoff).status
        # FailureTarget comes first (the pod failure policy matched; the other pods are being stopped).
        if _condition(status, "Failed") or _condition(status, "FailureTarget"):
            raise LaunchFailed(_failure_message(core, spec, status, seen, backoff))
        if (status.failed or 0) > replaced:  # the policy counted a disruption: the controller replaces the pod
            replaced = status.failed
            say(f"job {spec.name}: {replaced} worker pod(s) disrupted (evicted, preempted) and replaced; "
                f"the launch fails after {spec.max_disruptions}")
        seen.update({_index(p): p.metadata.name for p in _pods(core, spec, backoff)
                     if p.metadata.deletion_timestamp is None})
        if (status.succeeded or 0) >= spec.nodes or _condition(status, "Complete"):
            return LaunchResult(status.succeeded or spec.nodes, time.monotonic() - started)
        if time.monotonic() - started > spec.timeout_s:
            raise LaunchFailed(f"launch {spec.name} timed out after {spec.timeout_s:.0f}s")
        time.sleep(poll_s)


def _condition(status: Any, kind: str) -> bool:
    return any(c.type == kind and c.status == "True" for c in (status.conditions or []))


def _pods(core: Any, spec: LaunchSpec, backoff: Backoff = Backoff()) -> list[Any]:
    return call(core.list_namespaced_pod, spec.namespace, label_selector=f"{LABEL}={spec.name}",
                backoff=backoff).items


def _index(pod: Any) -> str:
    labels = pod.metadata.labels or {}
    annotations = pod.metadata.annotations or {}
    return labels.get(COMPLETION_INDEX_LABEL) or annotations.get(COMPLETION_INDEX_LABEL, "?")


def _failure_message(core: Any, spec: LaunchSpec, status: Any, seen: dict[str, str] | None = None,
                     backoff: Backoff = Backoff()) -> str:
    """One line naming the worker that failed the launch. When one fails, the Job controller stops the others
    (they turn terminating, and may fail as they go): those are never the cause. In order: a worker deleted
    from outside before the Job failed; a worker that failed on its own (with its log tail); one disrupted
    once too often; one whose pod vanished; one being stopped."""
    pods, seen = _pods(core, spec, backoff), seen or {}
    conditions = [c for c in status.conditions or [] if c.type in ("Failed", "FailureTarget")]
    reason = next((c.message or c.reason for c in conditions), "failed")
    failed_at = min((c.last_transition_time for c in conditions if c.last_transition_time), default=None)
    by_rank = lambda found: sorted(found, key=lambda p: _rank(_index(p)))[0]  # noqa: E731
    early = [p for p in pods if p.metadata.deletion_timestamp is not None and failed_at is not None
             and p.metadata.deletion_timestamp < failed_at]
    if early:
        pod = by_rank(early)
        return (f"worker {_index(pod)} ({pod.metadata.name}) was deleted before it finished; "
                f"launch {spec.name} failed: {reason}")
    own = [p for p in pods if p.status.phase == "Failed" and p.metadata.deletion_timestamp is None
           and not _disrupted(p)]
    if own:
        pod = by_rank(own)
        return f"worker {_index(pod)} ({pod.metadata.name}) failed: {_log_tail(core, spec, pod.metadata.name, backoff)}"
    disrupted = [p for p in pods if p.status.phase == "Failed" and _disrupted(p)]
    if disrupted:
        pod = by_rank(disrupted)
        return (f"worker {_index(pod)} ({pod.metadata.name}) was disrupted (evicted, preempted) and the launch "
                f"had replaced {len(disrupted) - 1} of at most {spec.max_disruptions}; "
                f"launch {spec.name} failed: {reason}")
    vanished = sorted((i for i in seen if i not in {_index(p) for p in pods}), key=_rank)
    if vanished:
        return (f"worker {vanished[0]} ({seen[vanished[0]]}) was deleted before it finished; "
                f"launch {spec.name} failed: {reason}")
    gone = _gone_first(pods)
    if gone is not None:
        return (f"worker {_index(gone)} ({gone.metadata.name}) was evicted or deleted before it finished; "
                f"launch {spec.name} failed: {reason}")
    return f"launch {spec.name} failed: {reason}"


def _disrupted(pod: Any) -> bool:
    return any(c.type == "DisruptionTarget" and c.status == "True" for c in pod.status.conditions or [])


def _rank(index: str) -> tuple[int, str]:
    return len(index), index  # numeric order for digit strings: 2 before 10


def _gone_first(pods: list[Any]) -> Any:
    """The pod of a worker being stopped from outside: disrupted (evicted, preempted: DisruptionTarget),
    else terminating; the lowest index of that kind."""
    disrupted = [p for p in pods if _disrupted(p)]
    terminating = [p for p in pods if p.metadata.deletion_timestamp is not None]
    for kind in (disrupted, terminating):
        if kind:
            return sorted(kind, key=lambda p: _rank(_index(p)))[0]
    return None


def _log_tail(core: Any, spec: LaunchSpec, pod_name: str, backoff: Backoff = Backoff(), lines: int = 20) -> str:
    try:
        log = call(core.read_namespaced_pod_log, pod_name, spec.namespace, tail_lines=lines, _request_timeout=10,
                   backoff=backoff)
    except Exception as err:  # noqa: BLE001 - the log is a courtesy; the failure is the message
        return f"(log unavailable: {type(err).__name__})"
    text = [line for line in (log or "").splitlines() if line.strip()]
    return " | ".join(text[-5:]) if text else "(empty log)"


def _stream_rank0(core: Any, spec: LaunchSpec, say: Callable[[str], None], backoff: Backoff) -> threading.Thread:
    """Follow pod 0's log in the background (rank 0 prints progress and metrics)."""

    def follow() -> None:
        deadline = time.monotonic() + spec.timeout_s
        while time.monotonic() < deadline:
            try:
                pod = next((p for p in _pods(core, spec, backoff) if _index(p) == "0"), None)
            except Exception:  # noqa: BLE001 - log streaming must not fail the launch; _wait reports errors
                pod = None
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


def delete(spec: LaunchSpec, api_client: Any, backoff: Backoff = Backoff()) -> None:
    """Delete the Job with foreground propagation: its pods and the owned Service go too."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    body = client.V1DeleteOptions(propagation_policy="Foreground")
    try:
        call(client.BatchV1Api(api_client).delete_namespaced_job, spec.name, spec.namespace, body=body,
             backoff=backoff)
    except ApiException as err:
        if err.status != 404:
            raise
    try:  # in case the Job was gone before the Service got its owner reference
        call(client.CoreV1Api(api_client).delete_namespaced_service, spec.service_name, spec.namespace,
             backoff=backoff)
    except ApiException as err:
        if err.status != 404:
            raise
