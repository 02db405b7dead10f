"""Kubeflow Pipelines 2.17's backend on the real node (issue #21): what ``make kfp-backend`` and
``make kfp-images`` built, started the way KFP's own manifests deploy it, for end-to-end runs of
mindzoo's compiled pipelines through the real API server, Argo and ML Metadata.

:meth:`Backend.start` takes a real-node cluster whose namespace ``kubeflow`` exists with an object
store in it (the mindzoo chart's MinIO) and

* imports the ``kfp-driver``, ``kfp-launcher`` and ``argoexec`` images into the node's containerd;
* renders KFP's manifests from its source (:mod:`kfpmanifests`) and applies their CRDs,
  ServiceAccounts, RBAC, ConfigMaps, Secrets and Services. The Deployments' programs run as
  processes on this machine instead (the API server, persistence agent and workflow controller
  binaries, ML Metadata's front end), each with its Deployment's environment and arguments and a
  kubeconfig holding a real token of its Deployment's ServiceAccount, so KFP's RBAC is what they
  run with. Their Services (``ml-pipeline``, ``metadata-grpc-service``) get no selector but an
  EndpointSlice to this machine's side of the node's link, so pods reach them by name;
* stores KFP's data in MariaDB (:mod:`mariadb`, database ``mlpipeline``) and ML Metadata's in the
  same server (``metadb``), as upstream's single-user install does;
* points KFP's artifact store at the given MinIO: a ``seaweedfs`` Service (the name KFP 2.17's
  launcher and Argo's artifact repository use) selecting the MinIO pods, the
  ``mlpipeline-minio-artifact`` Secret with its keys, and the ``mlpipeline`` bucket.

Two deliberate changes to upstream's settings, both for this machine: the API server's config.json
is upstream's without its ``plugins.mlflow`` block (an Open Data Hub MLflow at a fixed in-cluster
address; mindzoo's tasks log to MLflow themselves), and leader election is off (one replica each).

:meth:`Backend.stop` deletes the workflows (their pods go while the controller still runs), then
stops the processes and removes the persistence agent's token file, which KFP reads from a fixed
path. Only one backend runs at a time (the real node is one per machine).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import hoststate
import kfpbuild
import kfpmanifests
from mariadb import MariaDB
from nodenet import HOST_IP
from procs import HarnessError, Process, free_port, spawn, wait

NAMESPACE = kfpmanifests.NAMESPACE
ROOT = Path(__file__).resolve().parents[2]
MLMD_PYTHON = ROOT / ".venv-mlmd" / "bin" / "python"
MLMD_SERVER = ROOT / "tools" / "mlmd" / "server.py"
#: The persistence agent reads its API token from this fixed path (KFP's tokenrefresher.SaTokenFile).
TOKEN_FILE = Path("/var/run/secrets/kubeflow/tokens/persistenceagent-sa-token")
TOKEN_AUDIENCE = "pipelines.kubeflow.org"
#: Objects of KFP's manifests that are applied; Deployments are run as processes, the rest is for the UI.
APPLIED_KINDS = ("CustomResourceDefinition", "PriorityClass", "ServiceAccount", "Role", "RoleBinding",
                 "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Secret", "Service")
#: Services whose programs run on this machine: name -> {port name: key of Backend.ports}.
HOST_SERVICES = {"ml-pipeline": {"http": "http", "grpc": "grpc"}, "metadata-grpc-service": {"grpc-api": "mlmd"}}
#: The object store's Service name in KFP 2.17 (the launcher's default endpoint, Argo's artifact repository).
STORE_SERVICE = "seaweedfs"
STORE_SECRET = "mlpipeline-minio-artifact"
#: The ServiceAccount single-user KFP runs pipelines as (the API server's DEFAULTPIPELINERUNNERSERVICEACCOUNT).
RUNNER = "pipeline-runner"
#: The label KFP's API server puts on every pod of a run, its value the run id.
RUN_LABEL = "pipeline/runid"


@dataclass
class Backend:
    """The running backend. Build with :meth:`start`; :meth:`stop` returns what it could not undo."""

    cluster: object  # kubeharness.Cluster
    workdir: Path
    objects: list[dict]
    ports: dict[str, int]
    db: MariaDB | None = None
    processes: list[Process] = field(default_factory=list)
    created: list[tuple[str, str, str, str]] = field(default_factory=list)  # (apiVersion, kind, name, namespace)
    token_dirs: list[Path] = field(default_factory=list)  # folders of TOKEN_FILE created here

    @property
    def endpoint(self) -> str:
        """The API server's HTTP endpoint (what `kfp --endpoint` and kfp.Client take)."""
        return f"http://{HOST_IP}:{self.ports['http']}"

    @property
    def mlmd_address(self) -> str:
        return f"{HOST_IP}:{self.ports['mlmd']}"

    @classmethod
    def start(cls, cluster, workdir: Path, *, store: dict, timeout: float = 300) -> "Backend":
        """``store``: the MinIO KFP keeps artifacts in: ``service`` (its Service in namespace kubeflow),
        ``access_key``, ``secret_key``."""
        images = kfpbuild.import_all(cluster.images())
        (workdir / "logs").mkdir(parents=True, exist_ok=True)
        objects = kfpmanifests.render(workdir / "manifests", kustomize=kfpbuild.binary("kustomize"),
                                      source=kfpbuild.kfp_source(), argo_version=kfpbuild.argo_version(),
                                      images=images)
        ports = {"http": free_port(HOST_IP), "grpc": free_port(HOST_IP), "mlmd": free_port(HOST_IP)}
        backend = cls(cluster, workdir, objects, ports)
        try:
            backend.db = MariaDB.start(workdir / "mariadb")
            hoststate.record_pid(cluster.node.state, backend.db.process.proc.pid)
            backend._apply()
            backend._connect_store(store)
            backend._start_mlmd(timeout)
            backend._start_api_server(timeout)
            backend._start_workflow_controller(timeout)
            backend._start_persistence_agent(timeout)
        except HarnessError as exc:
            logs = "".join(f"\nlog of {p.name} ({p.log}):\n{p.tail(15)}" for p in backend.processes)
            backend.stop()
            raise HarnessError(f"{exc}{logs}") from None
        except BaseException:
            backend.stop()
            raise
        return backend

    # ---- objects

    def _named(self, kind: str, name: str) -> dict:
        return next(o for o in self.objects if o["kind"] == kind and o["metadata"]["name"] == name)

    def _apply(self) -> None:
        from kubernetes import utils

        api = self.cluster.api_client()
        secret = self._named("Secret", "mysql-secret")
        secret.pop("data", None)
        secret["stringData"] = {"username": self.db.user, "password": self.db.password}
        for name in HOST_SERVICES:
            self._named("Service", name)["spec"].pop("selector", None)
        applied = [o for o in self.objects if o["kind"] in APPLIED_KINDS]
        for o in applied:  # noted before creating: a create that fails half-way is undone all the same
            self._note(o["apiVersion"], o["kind"], o["metadata"]["name"], o["metadata"].get("namespace", ""))
        crds = [o for o in applied if o["kind"] == "CustomResourceDefinition"]
        utils.create_from_yaml(api, yaml_objects=crds)
        self._wait_established([c["metadata"]["name"] for c in crds])
        utils.create_from_yaml(api, yaml_objects=[o for o in applied if o["kind"] != "CustomResourceDefinition"])
        for name, port_keys in HOST_SERVICES.items():
            self._endpoints(name, {port: self.ports[key] for port, key in port_keys.items()})

    def _note(self, api_version: str, kind: str, name: str, namespace: str = NAMESPACE) -> None:
        self.created.append((api_version, kind, name, namespace))

    def _wait_established(self, names: list[str], timeout: float = 60) -> None:
        from kubernetes import client

        ext = client.ApiextensionsV1Api(self.cluster.api_client())

        def established() -> bool:
            return all(any(c.type == "Established" and c.status == "True"
                           for c in (ext.read_custom_resource_definition(n).status.conditions or []))
                       for n in names)

        wait("KFP's and Argo's CRDs established", established, timeout)

    def _endpoints(self, service: str, ports: dict[str, int]) -> None:
        """An EndpointSlice sending the selector-less ``service`` to this machine (the node routes to it)."""
        from kubernetes import client

        self._note("discovery.k8s.io/v1", "EndpointSlice", f"{service}-host")
        client.DiscoveryV1Api(self.cluster.api_client()).create_namespaced_endpoint_slice(NAMESPACE, {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": f"{service}-host", "labels": {"kubernetes.io/service-name": service}},
            "endpoints": [{"addresses": [HOST_IP], "conditions": {"ready": True}}],
            "ports": [{"name": name, "port": port, "protocol": "TCP"} for name, port in ports.items()]})

    def _connect_store(self, store: dict) -> None:
        """KFP's artifact store: its Service name on the given MinIO's pods, its Secret and bucket."""
        from kubernetes.client.rest import ApiException

        core = self.cluster.core()
        try:
            minio = core.read_namespaced_service(store["service"], NAMESPACE).spec
        except ApiException as exc:
            raise HarnessError(f"the object store's Service {store['service']} in namespace {NAMESPACE}: "
                               f"{exc.status} {exc.reason}") from None
        port = next(p for p in minio.ports if p.port == 9000)
        self._note("v1", "Service", STORE_SERVICE)
        self._note("v1", "Secret", STORE_SECRET)
        core.create_namespaced_service(NAMESPACE, {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": STORE_SERVICE},
            "spec": {"selector": minio.selector, "ports": [{"name": "s3", "port": 9000,
                                                            "targetPort": port.target_port}]}})
        core.create_namespaced_secret(NAMESPACE, {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": STORE_SECRET},
            "stringData": {"accesskey": store["access_key"], "secretkey": store["secret_key"]}})
        from minio import Minio

        bucket = self._named("ConfigMap", "pipeline-install-config")["data"]["bucketName"]
        client = Minio(f"{minio.cluster_ip}:9000", store["access_key"], store["secret_key"], secure=False)
        wait(f"MinIO at {minio.cluster_ip}:9000", lambda: client.bucket_exists(bucket) or
             client.make_bucket(bucket) is None, 120)
        self.store_host = minio.cluster_ip

    # ---- processes

    def _spawn(self, name: str, argv: list, env: dict[str, str]) -> Process:
        process = spawn(name, argv, logs=self.workdir / "logs", cwd=self.workdir, env=env)
        self.processes.append(process)
        hoststate.record_pid(self.cluster.node.state, process.proc.pid)
        return process

    def _kubeconfig(self, service_account: str) -> dict[str, str]:
        """The environment giving a program a kubeconfig with a real token of one of KFP's ServiceAccounts
        (valid for the test session): in ``$KUBECONFIG`` and at ``$HOME/.kube/config``, since some of KFP's
        clients read only the latter (the API server's ScheduledWorkflow client) or only the former."""
        home = self.workdir / "home" / service_account
        (home / ".kube").mkdir(parents=True)
        path = self.cluster.service_account_kubeconfig(NAMESPACE, service_account, home / ".kube" / "config",
                                                       seconds=12 * 3600)
        return {"KUBECONFIG": str(path), "HOME": str(home)}

    def _deployment(self, name: str) -> dict:
        return self._named("Deployment", name)["spec"]["template"]["spec"]

    def _env(self, deployment: str) -> dict[str, str]:
        """The environment of a Deployment's first container, its references resolved from the rendered
        objects (and the Secrets applied here)."""
        env = {}
        for item in self._deployment(deployment)["containers"][0].get("env", []):
            if "value" in item:
                env[item["name"]] = str(item["value"])
                continue
            ref = item.get("valueFrom", {})
            if "fieldRef" in ref:
                env[item["name"]] = {"metadata.namespace": NAMESPACE}.get(ref["fieldRef"]["fieldPath"],
                                                                          deployment)
            elif "configMapKeyRef" in ref:
                data = self._named("ConfigMap", ref["configMapKeyRef"]["name"])["data"]
                if ref["configMapKeyRef"]["key"] in data:
                    env[item["name"]] = data[ref["configMapKeyRef"]["key"]]
            elif "secretKeyRef" in ref:
                name, key = ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"]
                secret = self.cluster.core().read_namespaced_secret(name, NAMESPACE).data
                env[item["name"]] = base64.b64decode(secret[key]).decode()
        return env

    def _start_mlmd(self, timeout: float) -> None:
        config = self._named("ConfigMap", "pipeline-install-config")["data"]
        self.db.sql(f"CREATE DATABASE IF NOT EXISTS {config['mlmdDb']}")
        process = self._spawn("mlmd", [MLMD_PYTHON, MLMD_SERVER, "--host", HOST_IP, "--port", self.ports["mlmd"],
                                       "--mysql-host", self.db.host, "--mysql-port", self.db.port,
                                       "--mysql-database", config["mlmdDb"], "--mysql-user", self.db.user],
                              {"MLMD_MYSQL_PASSWORD": self.db.password})
        wait("ML Metadata's front end", lambda: "listening on" in process.log.read_text(), timeout, process)

    def _start_api_server(self, timeout: float) -> None:
        config_dir = self.workdir / "apiserver"
        config_dir.mkdir()
        config = json.loads((kfpbuild.kfp_source() / "backend/src/apiserver/config/config.json").read_text())
        config.pop("plugins", None)  # Open Data Hub's MLflow plugin: see the module's docstring
        (config_dir / "config.json").write_text(json.dumps(config, indent=2))
        env = self._env("ml-pipeline") | {
            **self._kubeconfig("ml-pipeline"),
            "DBCONFIG_MYSQLCONFIG_HOST": self.db.host, "DBCONFIG_MYSQLCONFIG_PORT": str(self.db.port),
            "DBCONFIG_HOST": self.db.host, "DBCONFIG_PORT": str(self.db.port),
            "OBJECTSTORECONFIG_HOST": self.store_host,
            # Required at start; the visualization server (KFP v1's UI) is not part of this backend.
            "ML_PIPELINE_VISUALIZATIONSERVER_SERVICE_HOST": "127.0.0.1",
            "ML_PIPELINE_VISUALIZATIONSERVER_SERVICE_PORT": "9",
            "METADATA_GRPC_SERVICE_SERVICE_HOST": HOST_IP,
            "METADATA_GRPC_SERVICE_SERVICE_PORT": str(self.ports["mlmd"])}
        process = self._spawn("apiserver", [kfpbuild.binary("apiserver"), f"--config={config_dir}",
                                            f"--httpPortFlag=:{self.ports['http']}",
                                            f"--rpcPortFlag=:{self.ports['grpc']}", "--logtostderr=true",
                                            "--collectMetricsFlag=false"], env)
        health = f"{self.endpoint}/apis/v1beta1/healthz"
        wait("KFP's API server (healthz)", lambda: urllib.request.urlopen(health, timeout=5).status == 200,
             timeout, process)

    def _start_workflow_controller(self, timeout: float) -> None:
        container = self._deployment("workflow-controller")["containers"][0]
        env = self._env("workflow-controller") | {"LEADER_ELECTION_DISABLE": "true"} | self._kubeconfig("argo")
        argv = [kfpbuild.binary("workflow-controller"), *container.get("args", []),
                f"--kubeconfig={env['KUBECONFIG']}", f"--managed-namespace={NAMESPACE}"]
        process = self._spawn("workflow-controller", argv, env)
        wait("Argo's workflow controller (healthz)",
             lambda: urllib.request.urlopen("http://127.0.0.1:6060/healthz", timeout=5).status == 200,
             timeout, process)

    def _start_persistence_agent(self, timeout: float) -> None:
        from kubernetes import client

        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                   "spec": {"audiences": [TOKEN_AUDIENCE], "expirationSeconds": 12 * 3600}}
        token = client.CoreV1Api(self.cluster.api_client()).create_namespaced_service_account_token(
            "ml-pipeline-persistenceagent", NAMESPACE, request).status.token
        missing = [p for p in (TOKEN_FILE.parent, *TOKEN_FILE.parent.parents) if not p.exists()]
        if TOKEN_FILE.exists():
            raise HarnessError(f"{TOKEN_FILE} exists: another KFP backend runs on this machine, or a killed one "
                               "left it (remove it)")
        self.token_dirs = missing
        TOKEN_FILE.parent.mkdir(parents=True, exist_ok=True)
        TOKEN_FILE.write_text(token)
        env = self._env("ml-pipeline-persistenceagent") | self._kubeconfig("ml-pipeline-persistenceagent")
        argv = [kfpbuild.binary("persistence_agent"), f"--kubeconfig={env['KUBECONFIG']}",
                f"--namespace={env.get('NAMESPACE', NAMESPACE)}", f"--mlPipelineAPIServerName={HOST_IP}",
                f"--mlPipelineServiceHttpPort={self.ports['http']}",
                f"--mlPipelineServiceGRPCPort={self.ports['grpc']}",
                f"--ttlSecondsAfterWorkflowFinish={env.get('TTL_SECONDS_AFTER_WORKFLOW_FINISH', '86400')}",
                f"--numWorker={env.get('NUM_WORKERS', '2')}"]
        process = self._spawn("persistence-agent", argv, env)
        # It checks the API server's health before its informers start; give it that long.
        wait("KFP's persistence agent", lambda: process.log.stat().st_size > 0 and _started(process), timeout,
             process)

    def pod_log(self, name: str, container: str = "main", lines: int | None = None) -> str:
        """A pod's container log in KFP's namespace ('' when it has none yet)."""
        from kubernetes.client.rest import ApiException

        try:
            return self.cluster.core().read_namespaced_pod_log(name, NAMESPACE, container=container,
                                                               **({"tail_lines": lines} if lines else {}))
        except ApiException:
            return ""

    def task_logs(self, run_id: str, step: str) -> list[str]:
        """The logs of every pod of the KFP run that ran ``mindzoo STEP`` (a retried task has several),
        oldest first: what KFP's UI shows as the task's logs (read through the Kubernetes API, as it does)."""
        pods = self.cluster.core().list_namespaced_pod(NAMESPACE, label_selector=f"{RUN_LABEL}={run_id}").items
        ran = [p for p in pods if any(runs_step(c, step) for c in p.spec.containers)]
        return [self.pod_log(p.metadata.name) for p in sorted(ran, key=lambda p: p.metadata.creation_timestamp)]

    def failed_logs(self, lines: int = 20) -> str:
        """The last lines of every failed workflow pod's containers, for a test's failure message."""
        core, out = self.cluster.core(), []
        for pod in core.list_namespaced_pod(NAMESPACE, label_selector="workflows.argoproj.io/workflow").items:
            if pod.status.phase != "Failed":
                continue
            for container in pod.spec.containers:
                try:
                    log = core.read_namespaced_pod_log(pod.metadata.name, NAMESPACE, container=container.name,
                                                       tail_lines=lines)
                except Exception as exc:  # noqa: BLE001 - a diagnostic: say why there is none
                    log = f"(no log: {exc})"
                out.append(f"--- {pod.metadata.name}/{container.name}:\n{log}")
        return "\n".join(out) or "(no failed workflow pod)"

    # ---- stop

    def stop(self, timeout: float = 120) -> list[str]:
        problems = self._delete_workflows(timeout) if self.processes else []
        for process in reversed(self.processes):
            process.stop()
            if process.alive():
                problems.append(f"{process.name} (pid {process.proc.pid}) would not stop")
        self.processes.clear()
        if self.db is not None:
            self.db.stop()
            if self.db.process.alive():
                problems.append(f"mariadbd (pid {self.db.process.proc.pid}) would not stop")
            self.db = None
        problems += self._delete_created(timeout)
        if self.token_dirs or TOKEN_FILE.exists():
            TOKEN_FILE.unlink(missing_ok=True)
            for folder in self.token_dirs:
                shutil.rmtree(folder, ignore_errors=True)
        return problems

    def _delete_created(self, timeout: float) -> list[str]:
        """Delete what :meth:`_apply` and :meth:`_connect_store` created, newest first, and wait for the CRDs to
        go (a later backend on the same cluster creates them again)."""
        from kubernetes.client.rest import ApiException
        from kubernetes.dynamic import DynamicClient
        from kubernetes.dynamic.exceptions import NotFoundError

        dynamic, problems, crds = DynamicClient(self.cluster.api_client()), [], []
        for api_version, kind, name, namespace in reversed(self.created):
            try:
                dynamic.resources.get(api_version=api_version, kind=kind).delete(name=name, namespace=namespace or None)
            except NotFoundError:
                continue
            except ApiException as exc:
                problems.append(f"cannot delete {kind} {name}: {exc.status} {exc.reason}")
                continue
            if kind == "CustomResourceDefinition":
                crds.append(name)
        self.created.clear()
        ext = dynamic.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
        deadline = time.monotonic() + timeout
        while (left := [n for n in crds if n in {c.metadata.name for c in ext.get().items}]):
            if time.monotonic() > deadline:
                return problems + [f"CRDs still there after {timeout:.0f} s: {', '.join(left)}"]
            time.sleep(0.5)
        return problems

    def _delete_workflows(self, timeout: float) -> list[str]:
        """Delete every Argo workflow in the namespace and wait for their pods to go."""
        from kubernetes import client

        custom, core = self.cluster.custom(), self.cluster.core()
        try:
            for item in custom.list_namespaced_custom_object("argoproj.io", "v1alpha1", NAMESPACE,
                                                             "workflows")["items"]:
                custom.delete_namespaced_custom_object("argoproj.io", "v1alpha1", NAMESPACE, "workflows",
                                                       item["metadata"]["name"], propagation_policy="Foreground")
        except client.ApiException as exc:
            if exc.status != 404:
                return [f"cannot delete the workflows: {exc.status} {exc.reason}"]
        deadline = time.monotonic() + timeout
        selector = "workflows.argoproj.io/workflow"
        while (left := core.list_namespaced_pod(NAMESPACE, label_selector=selector).items):
            if time.monotonic() > deadline:
                return [f"workflow pods still there after {timeout:.0f} s: "
                        + ", ".join(p.metadata.name for p in left)]
            time.sleep(1)
        return []


def runs_step(container, step: str) -> bool:
    """Does the container run ``mindzoo STEP`` (under Argo's and KFP's wrappers)?"""
    words = [*(container.command or []), *(container.args or [])]
    return any(words[i:i + 2] == ["mindzoo", step] for i in range(len(words)))


def _started(process: Process) -> bool:
    text = process.log.read_text(errors="replace")
    return "Starting" in text or "started" in text.lower()


def kfp_cli(backend: Backend, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run upstream's ``kfp`` CLI (the control environment's) against the backend."""
    kfp = ROOT / ".venv-control" / "bin" / "kfp"
    return subprocess.run([str(kfp), "--endpoint", backend.endpoint, *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "KF_PIPELINES_ENDPOINT": backend.endpoint})
