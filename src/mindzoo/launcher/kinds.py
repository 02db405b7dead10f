"""The Kubernetes kinds a launch runs as, behind one small interface that :mod:`.run` drives.

``job``: an Indexed Job plus the headless Service that names pod 0 (:mod:`.spec`; batch/v1, no operator).
``trainjob``: a Kubeflow Trainer v2.3.0 TrainJob (:mod:`.trainjob`); Trainer makes a JobSet of it, JobSet an
Indexed Job and its headless Service. Each kind reads its object into the same :class:`State`, so creating,
adopting, waiting, reporting the failing worker and deleting are written once. Every call goes through
:func:`.kubecall.call` (transient errors are repeated).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from mindzoo.errors import MindzooError
from mindzoo.launcher import trainjob as tj
from mindzoo.launcher.kubecall import Backoff, call
from mindzoo.launcher.spec import LABEL, SPEC_ANNOTATION, LaunchSpec, job_manifest, service_manifest

#: The Trainer version whose API these objects follow, and how an operator installs it.
TRAINER_INSTALL = ("kubectl apply --server-side -k "
                   "'https://github.com/kubeflow/trainer.git/manifests/overlays/manager?ref=v2.3.0'")
#: Trainer's validating webhook's words when the TrainJob names a runtime that does not exist.
RUNTIME_MISSING = "must be created before the TrainJob is created"


class LaunchRefused(MindzooError):
    """The cluster cannot run this kind of launch (an API or runtime missing, a webhook's denial)."""


@dataclass(frozen=True)
class Condition:
    type: str
    message: str
    at: datetime | None


@dataclass(frozen=True)
class State:
    """What the launcher needs of its object: which launch made it, and how far it got."""

    digest: str | None
    uid: str
    deleting: bool
    failures: tuple[Condition, ...]  # the true conditions that end the launch as failed
    complete: bool
    succeeded: int
    disruptions: int  # worker pods disrupted and replaced (the Job's pod failure policy counts them)
    failed_indexes: tuple[str, ...] = ()  # the worker indexes the Job counted as failed, where it counts them


class Kind(Protocol):
    noun: str  # the object in messages: "job", "trainjob"
    pod_selector: str  # the label selector of the launch's worker pods

    def manifest(self) -> dict[str, Any]: ...

    def read(self) -> State | None: ...

    def create(self) -> State: ...

    def after_create(self, state: State) -> None: ...

    def delete(self) -> None: ...


def kind_of(spec: LaunchSpec, api_client: Any, backoff: Backoff = Backoff()) -> Kind:
    return (TrainJobKind if spec.kind == "trainjob" else JobKind)(spec, api_client, backoff)


def _absent(fn: Any, *args: Any, backoff: Backoff, **kwargs: Any) -> Any:
    """``fn(...)``'s answer, or None where it is 404 (already gone, or not there yet)."""
    from kubernetes.client.rest import ApiException

    try:
        return call(fn, *args, backoff=backoff, **kwargs)
    except ApiException as err:
        if err.status == 404:
            return None
        raise


class JobKind:
    noun = "job"

    def __init__(self, spec: LaunchSpec, api_client: Any, backoff: Backoff) -> None:
        from kubernetes import client

        self.spec, self.backoff = spec, backoff
        self.batch, self.core = client.BatchV1Api(api_client), client.CoreV1Api(api_client)
        self.pod_selector = f"{LABEL}={spec.name}"

    def manifest(self) -> dict[str, Any]:
        return job_manifest(self.spec)

    def read(self) -> State | None:
        # jobs/status would need more RBAC: the Job's own GET carries its status.
        job = _absent(self.batch.read_namespaced_job, self.spec.name, self.spec.namespace, backoff=self.backoff)
        return None if job is None else self._state(job)

    def create(self) -> State:
        return self._state(call(self.batch.create_namespaced_job, self.spec.namespace, self.manifest(),
                                backoff=self.backoff))

    def after_create(self, state: State) -> None:
        from kubernetes.client.rest import ApiException

        try:
            call(self.core.create_namespaced_service, self.spec.namespace, service_manifest(self.spec, state.uid),
                 backoff=self.backoff)
        except ApiException as err:
            if err.status != 409:  # the adopted Job's Service, created by the earlier launch
                raise

    def delete(self) -> None:
        """Foreground: its pods and the owned Service go too; the Service also by name, in case the Job was
        gone before the Service got its owner reference."""
        from kubernetes import client

        body = client.V1DeleteOptions(propagation_policy="Foreground")
        _absent(self.batch.delete_namespaced_job, self.spec.name, self.spec.namespace, body=body, backoff=self.backoff)
        _absent(self.core.delete_namespaced_service, self.spec.service_name, self.spec.namespace, backoff=self.backoff)

    @staticmethod
    def _state(job: Any) -> State:
        status = job.status
        # FailureTarget comes first (the pod failure policy matched; the other pods are being stopped).
        true = [c for c in (status.conditions if status else None) or [] if c.status == "True"]
        return State(
            digest=(job.metadata.annotations or {}).get(SPEC_ANNOTATION), uid=job.metadata.uid,
            deleting=job.metadata.deletion_timestamp is not None,
            failures=tuple(Condition(c.type, c.message or c.reason or "", c.last_transition_time) for c in true
                           if c.type in ("Failed", "FailureTarget")),
            complete=any(c.type == "Complete" for c in true),
            succeeded=(status.succeeded or 0) if status else 0, disruptions=(status.failed or 0) if status else 0)


class TrainJobKind:
    noun = "trainjob"

    def __init__(self, spec: LaunchSpec, api_client: Any, backoff: Backoff) -> None:
        from kubernetes import client

        self.spec, self.backoff = spec, backoff
        self.api = client.CustomObjectsApi(api_client)
        self.pod_selector = f"{tj.JOBSET_NAME_LABEL}={spec.name}"
        self._where = (tj.GROUP, tj.VERSION, spec.namespace, tj.PLURAL)

    def manifest(self) -> dict[str, Any]:
        return tj.trainjob_manifest(self.spec)

    def read(self) -> State | None:
        found = _absent(self.api.get_namespaced_custom_object, *self._where, self.spec.name, backoff=self.backoff)
        if found is None:
            return None
        state = self._state(found)
        return self._with_job(state) if state.failures else state

    def _with_job(self, state: State) -> State:
        """A failed TrainJob's state with what the Indexed Job JobSet made of ``node`` knows: which workers
        failed (the runtimes count failures per index) and when the failure began. The TrainJob's own Failed
        condition comes later and its time moves (Trainer v2.3.0 clears and sets it again as it reconciles),
        and by the time it shows, the Job controller may have stopped - even removed - the other workers. The
        launcher's Role may read Jobs; the Job may be gone already (then: the TrainJob's word alone)."""
        from kubernetes import client

        job = _absent(client.BatchV1Api(self.api.api_client).read_namespaced_job, tj.trainer_job_name(self.spec),
                      self.spec.namespace, backoff=self.backoff)
        status = job.status if job is not None else None
        if status is None:
            return state
        failures = tuple(Condition(c.type, c.message or c.reason or "", c.last_transition_time)
                         for c in status.conditions or [] if c.status == "True" and c.type in ("Failed", "FailureTarget"))
        return replace(state, failures=state.failures + failures, failed_indexes=indexes(status.failed_indexes))

    def create(self) -> State:
        from kubernetes.client.rest import ApiException

        try:
            return self._state(call(self.api.create_namespaced_custom_object, *self._where, self.manifest(),
                                    backoff=self.backoff))
        except ApiException as err:
            refusal = refused(self.spec, err.status, err.body)
            if refusal is None:
                raise
            raise LaunchRefused(refusal) from None

    def after_create(self, state: State) -> None:
        """Nothing: JobSet makes the headless Service that names pod 0."""

    def delete(self) -> None:
        """In the background: the TrainJob goes at once and the garbage collector removes its JobSet, Jobs and
        pods after it. Not in the foreground: Trainer v2.3.0 reconciles a TrainJob that is being deleted like
        any other and re-creates the JobSet the collector removed, so a failed TrainJob's pods ran again every
        few seconds until its deletion finished (seen on the real node)."""
        body = {"propagationPolicy": "Background"}
        _absent(self.api.delete_namespaced_custom_object, *self._where, self.spec.name, body=body,
                backoff=self.backoff)

    def _state(self, job: dict[str, Any]) -> State:
        meta, status = job.get("metadata", {}), job.get("status") or {}
        true = [c for c in status.get("conditions") or [] if c.get("status") == "True"]
        trainer = next((s for s in status.get("jobsStatus") or [] if s.get("name") == tj.NODE), {})
        return State(
            digest=(meta.get("annotations") or {}).get(SPEC_ANNOTATION), uid=meta.get("uid", ""),
            deleting=meta.get("deletionTimestamp") is not None,
            failures=tuple(Condition(c["type"], c.get("message") or c.get("reason") or "",
                                     _time(c.get("lastTransitionTime"))) for c in true if c.get("type") == "Failed"),
            complete=any(c.get("type") == "Complete" for c in true),
            # A Job's completions: each of the trainer Job's succeeded pods is a node that finished.
            succeeded=trainer.get("succeeded") or 0, disruptions=0)


def indexes(text: str | None) -> tuple[str, ...]:
    """A Job's ``failedIndexes`` ("1,3-5") as the indexes it names, in order."""
    found: list[str] = []
    for part in filter(None, (text or "").split(",")):
        first, _, last = part.partition("-")
        found.extend(str(i) for i in range(int(first), int(last or first) + 1))
    return tuple(found)


def _time(stamp: str | None) -> datetime | None:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None


def refused(spec: LaunchSpec, status: int, body: str | None) -> str | None:
    """The one line that says why the cluster refused ``spec``'s TrainJob, or None for any other error:
    404 for the resource itself (no Trainer CRDs), Trainer's webhook denying a missing runtime, any other
    webhook denial in its own words."""
    try:
        answer = json.loads(body or "{}")
    except ValueError:
        answer = {}
    message = answer.get("message") or ""
    where = f"{spec.namespace}/{spec.name}"
    if status == 404 and (answer.get("details") or {}).get("kind") != "namespaces":
        return (f"cannot create trainjob {where}: this cluster has no trainjobs.{tj.GROUP}/{tj.VERSION} API; "
                f"--launch-kind trainjob needs Kubeflow Trainer v2.3.0's CRDs and controller "
                f"({TRAINER_INSTALL}), or launch with --launch-kind job")
    if RUNTIME_MISSING in message:
        return (f"cannot create trainjob {where}: the ClusterTrainingRuntime {spec.runtime!r} does not exist; "
                "install the chart's runtimes (helm upgrade RELEASE charts/mindzoo --reuse-values "
                "--set trainer.runtimes.enabled=true) or name another with --launch-runtime")
    if "admission webhook" in message and "denied the request" in message:
        return f"cannot create trainjob {where}: {message}"
    return None
