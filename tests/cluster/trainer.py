"""Kubeflow Trainer (v2, TrainJob) and JobSet controllers for the cluster tests: the real
binaries (scripts/build-tools.sh builds them into the tool cache) run as processes on this
machine against the harness's API server, with their admission webhooks registered by URL.

:meth:`Controllers.start` applies both projects' CRDs from the Go module cache (the sources
of the very versions built; never copies in this repository), makes a CA and a serving
certificate for 127.0.0.1 (:func:`kubepki.write_serving_cert`), starts ``jobset`` and
``trainer-controller-manager`` with configuration files written into its workdir, registers
the webhook configurations rendered from the upstream manifests (:mod:`trainerwebhooks`) and
waits until both webhooks answer a dry-run create. :meth:`Controllers.stop` deletes the
TrainJobs, JobSets and runtimes (while the controllers still run, so that their finalizers
are released), the webhook configurations, the processes and the CRDs it created.

What the controllers need here (found by reading their v2.3.0 / v0.12.0 sources and running them):

* both manage their own webhook certificates by default (a Secret for a Service DNS name and
  patching the caBundle); ``certManagement.enable: false`` (Trainer) and
  ``internalCertManagement.enable: false`` (JobSet) turn that off;
* Trainer's ``Configuration`` has no certificate folder: its webhook server uses
  controller-runtime's default, ``$TMPDIR/k8s-webhook-server/serving-certs/tls.{crt,key}``,
  so the harness gives it ``TMPDIR`` = a folder of its workdir and writes the pair there;
  JobSet's ``webhook.certDir`` names the same folder;
* metrics and health probes are switched off (``"0"``); readiness is a dry-run through the
  API server, which proves the webhook path end to end. Leader election is off;
* Trainer's status server runs only with the ``TrainJobStatus`` feature gate (alpha, off by
  default), so it needs no port or TLS here;
* the Volcano and coscheduling (scheduler-plugins) plugins look up their PodGroup kinds at
  start and only log "PodGroup CRDs must be installed in advance" when they are missing;
  neither is needed for runtimes without a podGroupPolicy. The JobSet CRD is required.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

import hoststate
import trainerapi
import trainerwebhooks
from kubepki import write_serving_cert
from procs import HarnessError, Process, cache_bin, free_port, spawn, wait

TRAINER_MODULE, JOBSET_MODULE = trainerapi.TRAINER_MODULE, trainerapi.JOBSET_MODULE
#: (group, version, plural, propagation policy) of the objects the controllers own, deleted in this order
#: at stop. TrainJobs in the background: Trainer v2.3.0 reconciles a TrainJob that is being deleted like any
#: other and re-creates its JobSet when the garbage collector removes it, so a foreground deletion of a
#: failed TrainJob re-ran its pods over and over (seen here). JobSets in the foreground: their Jobs and pods
#: go with them (the JobSet controller leaves a JobSet being deleted alone).
OBJECTS = (("trainer.kubeflow.org", "v1alpha1", "trainjobs", "Background"),
           ("jobset.x-k8s.io", "v1alpha2", "jobsets", "Foreground"),
           ("trainer.kubeflow.org", "v1alpha1", "trainingruntimes", None),
           ("trainer.kubeflow.org", "v1alpha1", "clustertrainingruntimes", None))
HOST = "127.0.0.1"


def built_version(tool: str) -> str:
    """The version of a built controller, from the stamp scripts/build-tools.sh writes beside it
    (``MODULE@VERSION`` for `go install`s, ``VERSION-HASH`` for wrappers)."""
    binary, stamp = cache_bin() / tool, cache_bin() / f".{tool}.version"
    if not binary.is_file() or not stamp.is_file():
        raise HarnessError(f"{tool} ({binary}) is not built: run `make tools` "
                           "(scripts/build-tools.sh builds it from source)")
    text = stamp.read_text().strip()
    return text.rsplit("@", 1)[1] if "@" in text else text.rsplit("-", 1)[0]


def module_dir(module: str, version: str) -> Path:
    """The module's source in the Go module cache (downloaded if absent), as a harness error if it cannot be."""
    try:
        return trainerapi.module_dir(module, version)
    except trainerapi.ModuleMissing as exc:
        raise HarnessError(str(exc)) from None


@dataclass
class Controllers:
    """The running controllers. Build with :meth:`start`; :meth:`stop` returns what it could not undo."""

    api: object  # kubernetes.client.ApiClient (cluster admin)
    workdir: Path
    processes: list[Process] = field(default_factory=list)
    crds: list[str] = field(default_factory=list)  # created by this harness: deleted at stop
    webhooks: list[tuple[str, str]] = field(default_factory=list)  # (kind, name)

    @property
    def cert_dir(self) -> Path:
        return self.workdir / "tmp" / "k8s-webhook-server" / "serving-certs"

    @classmethod
    def start(cls, cluster, workdir: Path, *, timeout: float = 120) -> "Controllers":
        """Start both controllers against ``cluster`` (a :class:`kubeharness.Cluster`)."""
        versions = {"trainer-controller-manager": built_version("trainer-controller-manager"),
                    "jobset": built_version("jobset")}
        trainer_src = module_dir(TRAINER_MODULE, versions["trainer-controller-manager"])
        jobset_src = module_dir(JOBSET_MODULE, versions["jobset"])
        (workdir / "logs").mkdir(parents=True, exist_ok=True)
        controllers = cls(cluster.api_client(), workdir)
        try:
            controllers._apply_crds(trainerapi.crd_files(trainer_src, jobset_src), timeout)
            ca = write_serving_cert(controllers.cert_dir, ip=HOST)
            jobset_port, trainer_port = free_port(HOST), free_port(HOST)
            jobset = controllers._spawn(cluster, "jobset", "config.jobset.x-k8s.io/v1alpha1", {
                "leaderElection": {"leaderElect": False}, "internalCertManagement": {"enable": False},
                "webhook": {"port": jobset_port, "host": HOST, "certDir": str(controllers.cert_dir)},
                "metrics": {"bindAddress": "0"}, "health": {"healthProbeBindAddress": "0"}})
            trainer = controllers._spawn(cluster, "trainer-controller-manager",
                                         "config.trainer.kubeflow.org/v1alpha1", {
                "leaderElection": {"leaderElect": False}, "certManagement": {"enable": False},
                "webhook": {"port": trainer_port, "host": HOST},
                "metrics": {"bindAddress": "0"}, "health": {"healthProbeBindAddress": "0"}})
            controllers._register_webhooks(trainerwebhooks.render(
                jobset_src / "config/components/webhook", url=f"https://{HOST}:{jobset_port}", ca_bundle=ca,
                name_prefix=trainerwebhooks.name_prefix(jobset_src / "config/default")))
            controllers._register_webhooks(trainerwebhooks.render(
                trainer_src / "manifests/base/webhook", url=f"https://{HOST}:{trainer_port}", ca_bundle=ca))
            wait("the JobSet controller's webhook (a dry-run JobSet)", controllers._jobset_answers, timeout, jobset)
            wait("the Trainer controller's webhook (a dry-run TrainJob)", controllers._trainer_answers, timeout,
                 trainer)
        except HarnessError as exc:
            logs = "".join(f"\nlog of {p.name} ({p.log}):\n{p.tail(15)}" for p in controllers.processes)
            controllers.stop()
            raise HarnessError(f"{exc}{logs}") from None
        except BaseException:
            controllers.stop()
            raise
        return controllers

    # ---- start

    def _apply_crds(self, files: list[Path], timeout: float) -> None:
        try:
            self.crds.extend(trainerapi.apply_crds(self.api, files, timeout))
        except RuntimeError as exc:
            raise HarnessError(str(exc)) from None

    def _spawn(self, cluster, tool: str, api_version: str, config: dict) -> Process:
        path = self.workdir / f"{tool}.yaml"
        path.write_text(yaml.safe_dump({"apiVersion": api_version, "kind": "Configuration", **config}))
        # TMPDIR: where controller-runtime's webhook server looks for its certificate by default (Trainer).
        process = spawn(tool, [cache_bin() / tool, f"--config={path}", f"--kubeconfig={cluster.kubeconfig}"],
                        logs=self.workdir / "logs", cwd=self.workdir, env={"TMPDIR": str(self.workdir / "tmp")})
        self.processes.append(process)
        if cluster.node is not None:  # a killed test session's leftovers are found by hoststate.clean_stale
            hoststate.record_pid(cluster.node.state, process.proc.pid)
        return process

    def _register_webhooks(self, docs: list[dict]) -> None:
        from kubernetes import client

        admission = client.AdmissionregistrationV1Api(self.api)
        for doc in docs:
            if doc["kind"] == "MutatingWebhookConfiguration":
                admission.create_mutating_webhook_configuration(doc)
            else:
                admission.create_validating_webhook_configuration(doc)
            self.webhooks.append((doc["kind"], doc["metadata"]["name"]))

    def _answers(self, create) -> bool:
        """The API server reached the webhook: the dry-run passed, or the webhook itself denied it."""
        from kubernetes.client.rest import ApiException

        try:
            create()
        except ApiException as exc:
            if "failed calling webhook" in (exc.body or "") or exc.status >= 500:
                raise RuntimeError(f"{exc.status}: {exc.body}") from None
        return True

    def _jobset_answers(self) -> bool:
        from kubernetes import client

        pod = {"restartPolicy": "Never", "containers": [{"name": "probe", "image": "probe"}]}
        body = {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "metadata": {"name": "harness-probe"},
                "spec": {"replicatedJobs": [{"name": "probe", "template": {"spec": {"template": {"spec": pod}}}}]}}
        return self._answers(lambda: client.CustomObjectsApi(self.api).create_namespaced_custom_object(
            "jobset.x-k8s.io", "v1alpha2", "default", "jobsets", body, dry_run="All"))

    def _trainer_answers(self) -> bool:
        from kubernetes import client

        body = {"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob",
                "metadata": {"name": "harness-probe"},
                "spec": {"runtimeRef": {"name": "harness-probe-no-such-runtime"}}}
        return self._answers(lambda: client.CustomObjectsApi(self.api).create_namespaced_custom_object(
            "trainer.kubeflow.org", "v1alpha1", "default", "trainjobs", body, dry_run="All"))

    # ---- stop

    def stop(self, timeout: float = 60) -> list[str]:
        problems = self._delete_objects(timeout) if self.alive() else []
        problems += self._delete_webhooks()
        for process in reversed(self.processes):
            process.stop()
            if process.alive():
                problems.append(f"{process.name} (pid {process.proc.pid}) would not stop")
        self.processes.clear()
        problems += self._delete_crds(timeout)
        return problems

    def alive(self) -> bool:
        return bool(self.processes) and all(p.alive() for p in self.processes)

    def _delete_objects(self, timeout: float) -> list[str]:
        """Delete every object of the controllers' kinds, each kind gone before the next (a runtime keeps
        a finalizer while TrainJobs use it). A JobSet's foreground deletion waits for kube-controller-manager's
        garbage collector, which handles a new kind (JobSet) only after its next discovery resync (every 30 s):
        up to ~20 s when the CRDs are new."""
        from kubernetes import client

        custom = client.CustomObjectsApi(self.api)
        problems = []
        for group, version, plural, propagation in OBJECTS:
            if not self._served(group, plural):
                continue
            for item in custom.list_cluster_custom_object(group, version, plural)["items"]:
                meta = item["metadata"]
                try:
                    if "namespace" in meta:
                        custom.delete_namespaced_custom_object(group, version, meta["namespace"], plural, meta["name"],
                                                               propagation_policy=propagation)
                    else:
                        custom.delete_cluster_custom_object(group, version, plural, meta["name"])
                except client.ApiException as exc:
                    if exc.status != 404:
                        problems.append(f"cannot delete {plural} {meta['name']}: {exc.status} {exc.reason}")
            deadline = time.monotonic() + timeout
            while custom.list_cluster_custom_object(group, version, plural)["items"]:
                if time.monotonic() > deadline:
                    items = custom.list_cluster_custom_object(group, version, plural)["items"]
                    left = [i["metadata"]["name"] for i in items]
                    problems.append(f"{plural} still there after {timeout:.0f} s: {', '.join(left)}")
                    break
                time.sleep(0.5)
        return problems + self._wait_for_collected(timeout)

    def _wait_for_collected(self, timeout: float) -> list[str]:
        """Wait until the garbage collector has removed the Jobs and pods of the deleted JobSets (they carry
        JobSet's label; one the GC deleted in the background may still have them)."""
        from kubernetes import client

        batch, core = client.BatchV1Api(self.api), client.CoreV1Api(self.api)
        selector = "jobset.sigs.k8s.io/jobset-name"
        deadline = time.monotonic() + timeout
        while True:
            left = [f"job {j.metadata.namespace}/{j.metadata.name}"
                    for j in batch.list_job_for_all_namespaces(label_selector=selector).items]
            left += [f"pod {p.metadata.namespace}/{p.metadata.name}"
                     for p in core.list_pod_for_all_namespaces(label_selector=selector).items]
            if not left:
                return []
            if time.monotonic() > deadline:
                return [f"not garbage-collected after {timeout:.0f} s: {', '.join(left)}"]
            time.sleep(0.5)

    def _served(self, group: str, plural: str) -> bool:
        from kubernetes import client

        crds = client.ApiextensionsV1Api(self.api).list_custom_resource_definition().items
        return f"{plural}.{group}" in {c.metadata.name for c in crds}

    def _delete_webhooks(self) -> list[str]:
        from kubernetes import client

        admission = client.AdmissionregistrationV1Api(self.api)
        problems = []
        for kind, name in self.webhooks:
            delete = (admission.delete_mutating_webhook_configuration if kind == "MutatingWebhookConfiguration"
                      else admission.delete_validating_webhook_configuration)
            try:
                delete(name)
            except client.ApiException as exc:
                if exc.status != 404:
                    problems.append(f"cannot delete {kind} {name}: {exc.status} {exc.reason}")
        self.webhooks.clear()
        return problems

    def _delete_crds(self, timeout: float) -> list[str]:
        problems = trainerapi.remove_crds(self.api, self.crds, timeout)
        self.crds.clear()
        return problems
