"""Create (or adopt), watch and clean up a distributed launch on Kubernetes.

The launch runs as an Indexed Job + headless Service or as a Kubeflow Trainer TrainJob; this
loop is the same for both and drives the kind through :class:`.kinds.Kind`. Rank 0's log is
streamed as it runs; a failed pod fails the launch with its log tail; the Job or TrainJob (and
through owner references its pods and Service) is deleted at the end whatever happened -
SIGTERM included - and the Job's TTL covers a launcher that is killed outright. Such a killed
launcher's object keeps running: launching again with the same run id adopts it (same name,
same spec digest) instead of failing with 409, and one that failed meanwhile is replaced. Every
API call rides out transient errors (:mod:`.kubecall`).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mindzoo.errors import MindzooError
from mindzoo.launcher.kinds import Kind, LaunchRefused, State, kind_of
from mindzoo.launcher.kubecall import Backoff, call
from mindzoo.launcher.spec import SPEC_ANNOTATION, LaunchSpec

__all__ = ["LaunchConflict", "LaunchFailed", "LaunchInterrupted", "LaunchRefused", "LaunchResult", "delete", "launch"]

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
    """A Job or TrainJob of this name exists that this launch did not create and may not adopt."""


def launch(spec: LaunchSpec, api_client: Any, say: Callable[[str], None] = print, poll_s: float = 2.0,
           cleanup: bool = True, fresh: Callable[[], None] | None = None,
           backoff: Backoff = Backoff()) -> LaunchResult:
    """Run ``spec`` to its end. ``fresh`` runs just before a new object is created (not when one is adopted):
    the caller clears what an earlier attempt published there."""
    from kubernetes import client

    kind, core = kind_of(spec, api_client, backoff), client.CoreV1Api(api_client)
    started = time.monotonic()
    restore = _raise_on_sigterm(spec, kind, cleanup)
    owned = False
    try:
        state = _adoptable(kind, spec, say)
        owned = True  # from here the object is this launch's: cleanup deletes it, even mid-create
        adopted = state is not None
        state = state or _create(kind, spec, fresh)
        kind.after_create(state)
        verb = "adopted" if adopted else "launched"
        say(f"{verb} {kind.noun} {spec.namespace}/{spec.name}: {spec.nodes} node(s), image {spec.image}")
        streamer = _stream_rank0(core, kind, spec, say, backoff)
        result = _wait(kind, core, spec, started, poll_s, say, backoff)
        streamer.join(timeout=5)
        return LaunchResult(result.succeeded, result.seconds, adopted)
    except LaunchConflict:
        owned = False  # someone else's object: never delete it
        raise
    finally:
        try:
            if cleanup and owned:
                kind.delete()
        finally:
            restore()


def _raise_on_sigterm(spec: LaunchSpec, kind: Kind, cleanup: bool) -> Callable[[], None]:
    """SIGTERM (the task pod deleted, the run cancelled) unwinds the launch like an error, so the object is
    deleted (or, with cleanup off, left to be adopted). Only the main thread may set signal handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    fate = ("deleted" if cleanup else
            "left running (launch again with the same run id to adopt it; its TTL removes it otherwise)")
    fired = []

    def stop(signum: int, frame: Any) -> None:
        if not fired:  # once: a second SIGTERM must not interrupt the cleanup the first one started
            fired.append(signum)
            raise LaunchInterrupted(f"terminated by SIGTERM: {kind.noun} {spec.namespace}/{spec.name} {fate}")

    previous = signal.signal(signal.SIGTERM, stop)
    return lambda: signal.signal(signal.SIGTERM, previous)


def _adoptable(kind: Kind, spec: LaunchSpec, say: Callable[[str], None]) -> State | None:
    """The object an earlier launch of this spec left (to adopt), or None. A failed one is deleted first."""
    state = kind.read()
    if state is None:
        return None
    _check_ours(kind, spec, state)
    if not state.deleting and not state.failures:
        return state
    say(f"{kind.noun} {spec.namespace}/{spec.name} of an earlier attempt failed or is going: replacing it")
    kind.delete()
    deadline = time.monotonic() + 120
    while kind.read() is not None:
        if time.monotonic() > deadline:
            raise LaunchFailed(f"{kind.noun} {spec.namespace}/{spec.name} of an earlier attempt was not deleted "
                               "in 120s")
        time.sleep(1.0)
    return None


def _check_ours(kind: Kind, spec: LaunchSpec, state: State) -> None:
    want = kind.manifest()["metadata"]["annotations"][SPEC_ANNOTATION]
    if state.digest != want:
        raise LaunchConflict(f"{kind.noun} {spec.namespace}/{spec.name} exists and is not this launch's "
                             f"({'another spec' if state.digest else 'not created by mindzoo launch'}): "
                             "delete it, or launch under another run id")


def _create(kind: Kind, spec: LaunchSpec, fresh: Callable[[], None] | None) -> State:
    from kubernetes.client.rest import ApiException

    if fresh is not None:
        fresh()
    try:
        return kind.create()
    except ApiException as err:
        if err.status != 409:
            raise
    # Created meanwhile - by this very call when its response was lost, or by a launch racing this one.
    state = kind.read()
    if state is None:
        raise LaunchFailed(f"{kind.noun} {spec.namespace}/{spec.name} existed a moment ago and is gone: "
                           "launch again")
    _check_ours(kind, spec, state)
    return state


def _wait(kind: Kind, core: Any, spec: LaunchSpec, started: float, poll_s: float, say: Callable[[str], None],
          backoff: Backoff) -> LaunchResult:
    seen: dict[str, str] = {}  # index -> pod name, so a worker whose pod vanishes can still be named
    replaced = 0
    while True:
        state = kind.read()
        if state is None:
            raise LaunchFailed(f"{kind.noun} {spec.namespace}/{spec.name} was deleted before it finished")
        if state.failures:
            raise LaunchFailed(_failure_message(core, kind, spec, state, seen, backoff))
        if state.disruptions > replaced:  # the policy counted a disruption: the controller replaces the pod
            replaced = state.disruptions
            say(f"{kind.noun} {spec.name}: {replaced} worker pod(s) disrupted (evicted, preempted) and replaced; "
                f"the launch fails after {spec.max_disruptions}")
        seen.update({_index(p): p.metadata.name for p in _pods(core, kind, spec, backoff)
                     if p.metadata.deletion_timestamp is None})
        if state.succeeded >= spec.nodes or state.complete:
            return LaunchResult(state.succeeded or spec.nodes, time.monotonic() - started)
        if time.monotonic() - started > spec.timeout_s:
            raise LaunchFailed(f"launch {spec.name} timed out after {spec.timeout_s:.0f}s")
        time.sleep(poll_s)


def _pods(core: Any, kind: Kind, spec: LaunchSpec, backoff: Backoff = Backoff()) -> list[Any]:
    return call(core.list_namespaced_pod, spec.namespace, label_selector=kind.pod_selector, backoff=backoff).items


def _index(pod: Any) -> str:
    labels = pod.metadata.labels or {}
    annotations = pod.metadata.annotations or {}
    return labels.get(COMPLETION_INDEX_LABEL) or annotations.get(COMPLETION_INDEX_LABEL, "?")


def _failure_message(core: Any, kind: Kind, spec: LaunchSpec, state: State, seen: dict[str, str] | None = None,
                     backoff: Backoff = Backoff()) -> str:
    """One line naming the worker that failed the launch. When one fails, the Job controller stops the others
    (they turn terminating, and may fail as they go): those are never the cause. In order: a worker deleted
    from outside before the Job failed; a worker that failed on its own (with its log tail); one disrupted
    once too often; one whose pod vanished; one being stopped."""
    pods, seen = _pods(core, kind, spec, backoff), seen or {}
    reason = next((c.message for c in state.failures if c.message), "failed")
    failed_at = min((c.at for c in state.failures if c.at), default=None)
    by_rank = lambda found: sorted(found, key=lambda p: _rank(_index(p)))[0]  # noqa: E731
    if state.failed_indexes:  # the Job's own account of which worker failed: no guessing from what is left
        index = sorted(state.failed_indexes, key=_rank)[0]
        pod = next((p for p in pods if _index(p) == index), None)
        if pod is not None and pod.status.phase == "Failed" and pod.metadata.deletion_timestamp is None:
            return f"worker {index} ({pod.metadata.name}) failed: {_log_tail(core, spec, pod.metadata.name, backoff)}"
        name = pod.metadata.name if pod is not None else seen.get(index, "its pod is gone")
        return f"worker {index} ({name}) was deleted or stopped before it finished; launch {spec.name} failed: {reason}"
    early = [p for p in pods if failed_at is not None and _deletion_asked(p) is not None
             and _deletion_asked(p) < failed_at]
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


def _deletion_asked(pod: Any) -> Any:
    """When the pod's deletion was asked for: its deletionTimestamp is that moment plus the grace period (the
    time it will be killed), so a worker the Job controller stops after the failure must not look earlier."""
    from datetime import timedelta

    meta = pod.metadata
    if meta.deletion_timestamp is None:
        return None
    return meta.deletion_timestamp - timedelta(seconds=meta.deletion_grace_period_seconds or 0)


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


def _stream_rank0(core: Any, kind: Kind, spec: LaunchSpec, say: Callable[[str], None],
                  backoff: Backoff) -> threading.Thread:
    """Follow pod 0's log in the background (rank 0 prints progress and metrics)."""

    def follow() -> None:
        deadline = time.monotonic() + spec.timeout_s
        while time.monotonic() < deadline:
            try:
                pod = next((p for p in _pods(core, kind, spec, backoff) if _index(p) == "0"), None)
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
    """Delete the launch's object with foreground propagation: its pods (and the Job's Service) go too."""
    kind_of(spec, api_client, backoff).delete()
