"""A real Kubernetes cluster for tests, started by the test session.

``Cluster.start(workdir)`` runs the control plane (:mod:`controlplane`: etcd,
kube-apiserver, kube-controller-manager, kube-scheduler) and then either

* **fake nodes** (default): kwok plays the kubelet of :data:`fakenodes.NODES`, which look
  like a cluster with the Ascend and NVIDIA device plugins (:mod:`kwoknodes`) — for the
  tests that need nodes this machine cannot have; no container runs; or
* **a real node** (``real_node=True``): containerd, the kubelet, kube-proxy and CoreDNS
  in a network namespace of their own (:mod:`realnode`, :mod:`nodenet`), where pods
  really run, from images imported into containerd (:mod:`nodeimages`). Everything it
  changes on the machine is put back when it stops (:mod:`hoststate`).

Tests reach it through the admin kubeconfig (:attr:`Cluster.kubeconfig`), the
``kubernetes`` client (:meth:`Cluster.api_client`, :meth:`Cluster.impersonate`,
:meth:`Cluster.service_account_client`) and Helm (:meth:`Cluster.helm`). Every failure to
start raises :class:`HarnessError` naming the part and the tail of its log, so tests
fail loudly instead of skipping.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import controlplane
import hoststate
import kwoknodes
from fakenodes import NODES, FakeNode
from kubepki import write_kubeconfig, write_pki
from kwoknodes import FAIL_LABEL, HOLD_LABEL  # noqa: F401 - tests import them from here
from procs import HarnessError, Process, Tools, free_port, spawn, wait

__all__ = ["Cluster", "HarnessError", "FAIL_LABEL", "HOLD_LABEL", "NODES", "helm_env"]


def helm_env(home: Path) -> dict[str, str]:
    """Environment that keeps Helm's cache/config/data inside ``home``, away from the user's."""
    return {**os.environ, "HELM_CACHE_HOME": str(home / "cache"), "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"), "HELM_PLUGINS": str(home / "plugins")}


@dataclass
class Cluster:
    """A running cluster. Build one with :meth:`start`; stop it with :meth:`stop`."""

    workdir: Path
    server: str
    kubeconfig: Path
    tools: Tools
    processes: list[Process] = field(default_factory=list)
    pki: Path = field(init=False)
    kwok: kwoknodes.Kwok | None = None
    node: Any = None  # realnode.RealNode when started with real_node=True
    host: hoststate.HostState | None = None
    etcd_data: Path | None = None

    def __post_init__(self) -> None:
        self.pki = self.workdir / "pki"

    # ---- life cycle

    @classmethod
    def start(cls, workdir: Path, *, nodes: tuple[FakeNode, ...] = NODES, real_node: bool = False,
              volumes: int = 24, timeout: float = 180,
              before_node: Callable[[Any], None] | None = None) -> "Cluster":
        """Start the control plane, then kwok's fake ``nodes`` or (``real_node``) one real node;
        ``before_node(network)`` runs once the node's network exists (a test makes a start fail there)."""
        tools = Tools.find(real_node=real_node)
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "logs").mkdir(exist_ok=True)
        host = "127.0.0.1"
        cluster = cls(workdir, "", workdir / "admin.kubeconfig", tools)
        atexit.register(cluster.stop)  # no orphaned cluster if the caller never stops it
        try:
            if real_node:
                cluster._prepare_real_node()
                host = cluster.node.api_host
                if before_node:
                    before_node(cluster.node.net)
            from realnode import NODE_NAME
            from nodenet import NODE_IP
            write_pki(cluster.pki, api_ips=(host,), node=(NODE_NAME, NODE_IP) if real_node else None)
            port = free_port(host)
            cluster.server = f"https://{host}:{port}"
            url, cluster.etcd_data = controlplane.start_etcd(cluster._spawn, workdir, timeout)
            controlplane.start_apiserver(cluster._spawn, workdir=workdir, etcd_url=url, host=host, port=port,
                                         timeout=timeout)
            cluster._write_kubeconfigs(real_node)
            if not real_node:
                kwoknodes.install_crds(cluster.api_client(), timeout, cluster._process("kube-apiserver"))
            cluster._start_controllers(timeout)
            if real_node:
                cluster._start_real_node(timeout)
            else:
                kwoknodes.add_nodes(cluster.core(), nodes, timeout, cluster.kwok.process)
                cluster._add_volumes(volumes)
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def stop(self) -> list[str]:
        """Stop every process, newest first, drop etcd's data (it may live in RAM on /dev/shm) and, for a
        real node, undo what it changed on the machine. Returns what could not be undone."""
        problems = self.node.stop(self.host) if self.node is not None else []
        self.node = None
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        if self.etcd_data:
            shutil.rmtree(self.etcd_data, ignore_errors=True)
        return problems

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Process:
        tool = self.tools.paths.get(argv[0])
        process = spawn(name, [str(tool) if tool else argv[0], *argv[1:]], logs=self.workdir / "logs",
                        cwd=self.workdir, env=env)
        self.processes.append(process)
        if self.node is not None:
            hoststate.record_pid(self.node.state, process.proc.pid)
        return process

    def _process(self, name: str) -> Process:
        return next(p for p in self.processes if p.name == name)

    def _write_kubeconfigs(self, real_node: bool) -> None:
        names = ["admin", "controller-manager", "scheduler"]
        names += ["kubelet-client", "kube-proxy", "coredns"] if real_node else ["kwok"]
        for name in names:
            write_kubeconfig(self.workdir / f"{name}.kubeconfig", self.server, self.pki, name)

    def _start_controllers(self, timeout: float) -> None:
        kcm, scheduler = controlplane.start_controllers(self._spawn, self.workdir)
        if self.node is None:
            self.kwok = kwoknodes.Kwok(self._spawn, self.workdir, free_port())
        # The ServiceAccount controller creating `default` proves the controller manager works.
        core = self.core()
        wait("kube-controller-manager (ServiceAccount controller)",
             lambda: core.read_namespaced_service_account("default", "default") is not None, timeout, kcm)
        for process in [scheduler, *([self.kwok.process] if self.kwok else [])]:
            if not process.alive():
                raise HarnessError(f"{process.name} exited with {process.proc.returncode}: {process.cause()} "
                                   f"(log: {process.log})")
        if self.kwok:
            self.kwok.wait_serving(timeout)

    def _prepare_real_node(self) -> None:
        from nodenet import NodeNetwork
        from realnode import RealNode, state_dir

        for line in hoststate.clean_stale():
            print(f"kubeharness: {line}")
        self.host = hoststate.HostState()
        state = state_dir()
        state.mkdir(mode=0o700)
        self.host.save(state / "host.json")
        (state / "workdir").write_text(str(self.workdir))
        self.node = RealNode(self.tools, self.workdir / "node", None)
        self.node.net = NodeNetwork.create(self.tools)

    def _start_real_node(self, timeout: float) -> None:
        from nodeimages import NodeImages, build_pause
        from realnode import NODE_NAME, PAUSE_IMAGE

        node = self.node
        node.start(kubeconfigs={"kubelet": self.workdir / "kubelet-client.kubeconfig",
                                "kube-proxy": self.workdir / "kube-proxy.kubeconfig",
                                "coredns": self.workdir / "coredns.kubeconfig"}, timeout=timeout)
        build_pause(self.tools, PAUSE_IMAGE)
        images = NodeImages(self.tools, node.socket)
        images.prune()  # what an earlier run's imports superseded
        images.ensure(PAUSE_IMAGE)
        core = self.core()

        def ready() -> bool:
            if node.dead():
                dead = node.dead()[0]
                raise HarnessError(f"the real node cannot start: {dead.name} exited with {dead.proc.returncode}: "
                                   f"{dead.cause()} (log: {dead.log})")
            status = core.read_node(NODE_NAME)
            conditions = {c.type: c.status for c in status.status.conditions or []}
            untainted = not any(t.key.startswith("node.kubernetes.io/") for t in status.spec.taints or [])
            return conditions.get("Ready") == "True" and untainted

        wait(f"the real node {NODE_NAME} Ready (kubelet log: {node.workdir / 'logs' / 'kubelet.log'})",
             ready, timeout)

    def images(self):
        """The real node's image importer (:class:`nodeimages.NodeImages`)."""
        from nodeimages import NodeImages

        if self.node is None:
            raise HarnessError("images can only be imported into a real node")
        return NodeImages(self.tools, self.node.socket)

    def _add_volumes(self, count: int, folder: Path = Path("/tmp")) -> None:
        """Static PersistentVolumes (no class) so StatefulSet claims bind without a provisioner."""
        core = self.core()
        existing = len(core.list_persistent_volume(label_selector="harness=static").items)
        for i in range(existing, existing + count):
            core.create_persistent_volume({
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": f"harness-pv-{i:02d}", "labels": {"harness": "static"}},
                "spec": {"capacity": {"storage": "100Gi"}, "accessModes": ["ReadWriteOnce"],
                         "persistentVolumeReclaimPolicy": "Retain",
                         "hostPath": {"path": str(folder / f"mindzoo-harness-pv-{i:02d}")}},
            })

    def add_host_path_volumes(self, count: int) -> None:
        """Volumes for the real node's claims: folders in its workdir that any pod user may write (a
        hostPath volume ignores fsGroup), removed with the workdir."""
        folder = self.node.workdir / "volumes"
        folder.mkdir(exist_ok=True)
        start = len(self.core().list_persistent_volume(label_selector="harness=static").items)
        for i in range(start, start + count):
            (folder / f"mindzoo-harness-pv-{i:02d}").mkdir(mode=0o777)
            os.chmod(folder / f"mindzoo-harness-pv-{i:02d}", 0o777)
        self._add_volumes(count, folder)

    # ---- clients

    def api_client(self, *, user: str | None = None, groups: tuple[str, ...] = ()):
        """A ``kubernetes.client.ApiClient`` as cluster admin, or impersonating ``user`` (and ``groups``)."""
        from kubernetes import client

        config = client.Configuration()
        config.host = self.server
        config.ssl_ca_cert = str(self.pki / "ca.crt")
        config.cert_file = str(self.pki / "admin.crt")
        config.key_file = str(self.pki / "admin.key")
        api = client.ApiClient(config)
        if user:
            api.set_default_header("Impersonate-User", user)
            if groups:  # one header per group would be needed for several: keep it to one
                if len(groups) > 1:
                    raise ValueError("impersonate at most one extra group through this client")
                api.set_default_header("Impersonate-Group", groups[0])
        return api

    def impersonate(self, namespace: str, service_account: str):
        """An ApiClient acting as a ServiceAccount (the API server adds its groups, as for its own tokens)."""
        return self.api_client(user=f"system:serviceaccount:{namespace}:{service_account}")

    def service_account_client(self, namespace: str, service_account: str, *, seconds: int = 3600):
        """An ApiClient holding a real token of the ServiceAccount (TokenRequest, signed by the harness key)."""
        from kubernetes import client

        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                   "spec": {"expirationSeconds": seconds}}
        token = self.core().create_namespaced_service_account_token(service_account, namespace, request).status.token
        config = client.Configuration()
        config.host = self.server
        config.ssl_ca_cert = str(self.pki / "ca.crt")
        config.api_key = {"authorization": f"Bearer {token}"}
        return client.ApiClient(config)

    def service_account_kubeconfig(self, namespace: str, service_account: str, path: Path, *,
                                   seconds: int = 3600) -> Path:
        """A kubeconfig at ``path`` holding a real token of the ServiceAccount, its namespace the default:
        what a process in one of its pods sees."""
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                   "spec": {"expirationSeconds": seconds}}
        token = self.core().create_namespaced_service_account_token(service_account, namespace, request).status.token
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "sa",
            "clusters": [{"name": "harness", "cluster": {"server": self.server,
                                                        "certificate-authority": str(self.pki / "ca.crt")}}],
            "users": [{"name": "sa", "user": {"token": token}}],
            "contexts": [{"name": "sa", "context": {"cluster": "harness", "user": "sa", "namespace": namespace}}]}))
        return path

    def core(self, api=None):
        from kubernetes import client

        return client.CoreV1Api(api or self.api_client())

    def batch(self, api=None):
        from kubernetes import client

        return client.BatchV1Api(api or self.api_client())

    def custom(self, api=None):
        from kubernetes import client

        return client.CustomObjectsApi(api or self.api_client())

    # ---- helpers

    def create_namespace(self, name: str, *, restricted: bool = True) -> str:
        """A namespace; ``restricted`` enforces the "restricted" Pod Security Standard in it."""
        labels = {"pod-security.kubernetes.io/enforce": "restricted",
                  "pod-security.kubernetes.io/warn": "restricted"} if restricted else {}
        self.core().create_namespace({"apiVersion": "v1", "kind": "Namespace",
                                      "metadata": {"name": name, "labels": labels}})
        sa = self.core()
        wait(f"ServiceAccount default in {name}",
             lambda: sa.read_namespaced_service_account("default", name) is not None, 60)
        return name

    def helm(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run ``helm ARGS`` against this cluster (its own Helm home under the workdir)."""
        argv = [str(self.tools.helm), "--kubeconfig", str(self.kubeconfig), *args]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              env=helm_env(self.workdir / "helm"))
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}\n"
                                 f"{self.diagnostics()}")
        return proc

    def pod_logs(self, namespace: str, lines: Sequence[str], **kwargs):
        """kwok serves ``lines`` as the pods' log while the block runs (see :func:`kwoknodes.pod_logs`)."""
        if self.kwok is None:
            raise HarnessError("pod_logs stands in for a kubelet: a real node serves real logs")
        return kwoknodes.pod_logs(self.kwok, self.custom(), namespace, lines, **kwargs)

    def placement(self, namespace: str, selector: str, count: int, timeout: float = 60) -> list[str]:
        """The sorted nodes of ``count`` pods (``selector``) that kwok holds Running (:data:`HOLD_LABEL`), once all
        of them run; then lets kwok complete them. Without the hold a pod completes as soon as it runs, so its
        node is free again and a later pod of the same Job may be scheduled onto it."""
        core = self.core()

        def all_running():
            pods = core.list_namespaced_pod(namespace, label_selector=selector).items
            return pods if len(pods) == count and all(p.status.phase == "Running" for p in pods) else None

        pods = self.wait_for(f"{count} held pods ({selector}) running", all_running, timeout)
        for pod in pods:
            core.patch_namespaced_pod(pod.metadata.name, namespace, {"metadata": {"labels": {HOLD_LABEL: None}}})
        return sorted(p.spec.node_name for p in pods)

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 60, interval: float = 0.5) -> Any:
        """Poll ``check`` until it returns something truthy; fail with ``what`` and the cluster's state."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                value = check()
                if value:
                    return value
            except Exception as exc:  # noqa: BLE001 - keep polling
                last = exc
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last})\n"
                             f"{self.diagnostics()}")

    def diagnostics(self) -> str:
        """Processes that are down (with log tails) and the pods that are not done (for failure messages)."""
        processes = [*self.processes, *(self.node.processes if self.node else [])]
        down = [f"{p.name} exited {p.proc.returncode}:\n{p.tail()}" for p in processes if not p.alive()]
        lines = down or [f"(all {len(processes)} cluster processes running; logs in {self.workdir})"]
        try:
            # A pod the scheduler calls "untolerated taint(s)": name them (seen: disk pressure on a shared disk).
            for node in self.core().list_node(timeout_seconds=10).items:
                taints = [f"{t.key}:{t.effect}" for t in node.spec.taints or []]
                pressed = [c.type for c in node.status.conditions or [] if c.type != "Ready" and c.status == "True"]
                if taints or pressed:
                    lines.append(f"node {node.metadata.name}: taints {taints or 'none'}, "
                                 f"conditions {pressed or 'none'}")
            for pod in self.core().list_pod_for_all_namespaces(timeout_seconds=10).items:
                if pod.status.phase in ("Succeeded",):
                    continue
                waiting = [f"{c.type}={c.status}{'(' + c.reason + ': ' + (c.message or '') + ')' if c.reason else ''}"
                           for c in pod.status.conditions or [] if c.status != "True"]
                states = [f"{s.name}:{s.state.waiting.reason}({(s.state.waiting.message or '')[:200]})"
                          for s in pod.status.container_statuses or [] if s.state and s.state.waiting]
                lines.append(f"pod {pod.metadata.namespace}/{pod.metadata.name} on {pod.spec.node_name}: "
                             f"{pod.status.phase} {' '.join(waiting + states)}")
        except Exception as exc:  # noqa: BLE001 - diagnostics must not mask the failure
            lines.append(f"(could not list pods: {exc})")
        return "\n".join(lines)

