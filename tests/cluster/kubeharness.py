"""A real Kubernetes control plane on loopback, for tests (no containers, no root).

``Cluster.start(workdir)`` runs, as child processes:

* **etcd** (Debian's ``etcd-server``) with its data on /dev/shm when writable (else
  in ``workdir``; ``$MINDZOO_ETCD_DIR`` overrides);
* **kube-apiserver** with TLS, client-certificate authentication, ``Node,RBAC``
  authorization, the default admission plugins (PodSecurity included) and a
  service-account token signer, from keys and certificates generated here;
* **kube-controller-manager** (Job, Deployment/ReplicaSet, StatefulSet,
  ServiceAccount and its tokens, namespace, garbage collector, PV binding, ...)
  and **kube-scheduler**: both from the ``hyperkube`` binary that
  ``scripts/build-tools.sh`` builds from tools/hyperkube (Kubernetes' Go source);
* **kwok**, which plays the kubelet of fake nodes: pods scheduled onto them
  become Running/Ready, pods that are not ``restartPolicy: Always`` then
  Succeed, and pods labelled :data:`FAIL_LABEL` fail (``kwok-stages.yaml``).
  It also serves the kubelet API (HTTPS, a certificate from the harness CA) on
  127.0.0.1, the fake nodes' InternalIP and ``daemonEndpoints`` port: the API
  server verifies it and proxies ``pods/log`` to it, and kwok answers with the
  log file a ``ClusterLogs`` object (kwok's CRD, installed here) names for the
  pod; :meth:`Cluster.pod_logs` sets one up for a test.

The fake nodes (:data:`NODES`) look like a cluster with the real device plugins:
Ascend 910 and 310 nodes advertise ``huawei.com/Ascend910``/``huawei.com/Ascend310``
with the ``accelerator: huawei-Ascend910``/``huawei-Ascend310`` labels and taints keyed
by the resource name, a GPU node advertises ``nvidia.com/gpu``, and plain CPU
nodes run everything else. Static PersistentVolumes let StatefulSet claims bind.

Two settings work around Debian's etcd 3.4.23, which predates on-demand watch
progress (3.4.31): etcd sends periodic progress notifications every 200 ms (the
API server's watch cache keeps up with etcd's revision), and the API server's
``WatchList`` feature is off (clients fall back to LIST + WATCH instead of
streaming lists the watch cache cannot serve).

Tests reach it through the admin kubeconfig (:attr:`Cluster.kubeconfig`), the
``kubernetes`` client (:meth:`Cluster.api_client`, :meth:`Cluster.impersonate`,
:meth:`Cluster.service_account_client`) and Helm (:meth:`Cluster.helm`). Every
failure to start raises :class:`HarnessError` naming the part and the tail of its
log, so tests fail loudly instead of skipping.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from fakenodes import NODES, FakeNode
from kubepki import SERVICE_CIDR, write_kubeconfig, write_pki

HERE = Path(__file__).resolve().parent
STAGES = HERE / "kwok-stages.yaml"
CLUSTER_LOGS_CRD = HERE / "kwok-clusterlogs-crd.yaml"

#: Pods with this label are failed by kwok (exit code 1) instead of completing.
FAIL_LABEL = "pod-container-running-failed.stage.kwok.x-k8s.io"
#: Issuer (and audience) of the service-account tokens the API server signs.
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"


class HarnessError(RuntimeError):
    """The cluster (or one of its parts) could not be started or used."""


# --------------------------------------------------------------------- tools

def cache_bin() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mindzoo"
    return Path(os.environ.get("MINDZOO_CACHE_DIR", default)) / "bin"


@dataclass(frozen=True)
class Tools:
    """Paths of the binaries the harness runs."""

    hyperkube: Path
    kwok: Path
    helm: Path
    etcd: Path

    @classmethod
    def find(cls) -> "Tools":
        """Locate every tool, or raise one error listing all that are missing and how to get them."""
        bin_dir = cache_bin()
        found = {name: bin_dir / name for name in ("hyperkube", "kwok", "helm")}
        etcd = shutil.which("etcd") or "/usr/bin/etcd"
        missing = [f"{name} ({path}): run `make tools` (scripts/build-tools.sh builds it from Go source)"
                   for name, path in found.items() if not os.access(path, os.X_OK)]
        if not os.access(etcd, os.X_OK):
            missing.append("etcd: run `make system` (Debian package etcd-server)")
        if missing:
            raise HarnessError("the cluster test harness cannot start; missing:\n  " + "\n  ".join(missing))
        return cls(etcd=Path(etcd), **found)


def helm_env(home: Path) -> dict[str, str]:
    """Environment that keeps Helm's cache/config/data inside ``home``, away from the user's."""
    return {**os.environ, "HELM_CACHE_HOME": str(home / "cache"), "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"), "HELM_PLUGINS": str(home / "plugins")}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------ processes

@dataclass
class _Process:
    name: str
    proc: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 15) -> None:
        if not self.alive():
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def _wait(what: str, check: Callable[[], bool], timeout: float, process: _Process | None = None,
          interval: float = 0.3) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise HarnessError(f"{what}: {process.name} exited with {process.proc.returncode}; "
                               f"its log ({process.log}):\n{process.tail()}")
        try:
            if check():
                return
        except Exception as exc:  # noqa: BLE001 - keep polling; report the last one
            last = exc
        time.sleep(interval)
    log = f"\nlog of {process.name} ({process.log}):\n{process.tail()}" if process else ""
    raise HarnessError(f"{what}: not ready after {timeout:.0f} s (last error: {last}){log}")


#: Controllers kube-controller-manager runs: what Jobs, Deployments, StatefulSets,
#: Services, namespaces, ServiceAccounts and volume claims need, and node lifecycle
#: (it lifts the `node.kubernetes.io/not-ready` taint new nodes get once kwok makes
#: them Ready, and watches the leases kwok renews).
CONTROLLERS = ("node-lifecycle-controller",
    "job-controller", "ttl-after-finished-controller", "deployment-controller", "replicaset-controller",
    "statefulset-controller", "endpointslice-controller", "endpoints-controller", "serviceaccount-controller",
    "serviceaccount-token-controller", "root-ca-certificate-publisher-controller", "namespace-controller",
    "garbage-collector-controller", "pod-garbage-collector-controller", "persistentvolume-binder-controller",
    "persistentvolumeclaim-protection-controller", "persistentvolume-protection-controller",
    "clusterrole-aggregation-controller", "service-cidr-controller",
)


# -------------------------------------------------------------------- cluster

@dataclass
class Cluster:
    """A running control plane. Build one with :meth:`start`; stop it with :meth:`stop`."""

    workdir: Path
    server: str
    kubeconfig: Path
    tools: Tools
    processes: list[_Process] = field(default_factory=list)
    pki: Path = field(init=False)
    #: Port of kwok's kubelet server on 127.0.0.1 (every fake node's kubelet endpoint).
    kubelet_port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.pki = self.workdir / "pki"

    # ---- life cycle

    @classmethod
    def start(cls, workdir: Path, *, nodes: tuple[FakeNode, ...] = NODES, volumes: int = 24,
              timeout: float = 180) -> "Cluster":
        """Start etcd, the API server, controller manager, scheduler and kwok; add nodes and volumes."""
        tools = Tools.find()
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "logs").mkdir(exist_ok=True)
        write_pki(workdir / "pki")
        port = free_port()
        cluster = cls(workdir, f"https://127.0.0.1:{port}", workdir / "admin.kubeconfig", tools)
        atexit.register(cluster.stop)  # no orphaned control plane if the caller never stops it
        try:
            cluster._start_etcd(timeout)
            cluster._start_apiserver(port, timeout)
            cluster._install_kwok_crds(timeout)
            cluster._start_controllers(timeout)
            cluster._add_nodes(nodes, timeout)
            cluster._add_volumes(volumes)
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def stop(self) -> None:
        """Stop every process, newest first, and drop etcd's data (it may live in RAM on /dev/shm)."""
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        self.cleanup_storage()

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> _Process:
        log = self.workdir / "logs" / f"{name}.log"
        handle = log.open("ab")
        env = {**os.environ, **(env or {})}
        proc = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=self.workdir, env=env, start_new_session=True)
        handle.close()
        process = _Process(name, proc, log)
        self.processes.append(process)
        return process

    def _start_etcd(self, timeout: float) -> None:
        client, peer = free_port(), free_port()
        shm = Path("/dev/shm")
        # On tmpfs when there is one: fsync-heavy etcd is the slowest part on a small disk.
        base = Path(os.environ.get("MINDZOO_ETCD_DIR", shm if os.access(shm, os.W_OK) else self.workdir))
        data = base / f"mindzoo-etcd-{os.getpid()}-{client}"
        self.etcd_data = data
        self.etcd_url = f"http://127.0.0.1:{client}"
        process = self._spawn("etcd", [
            str(self.tools.etcd), "--name=harness", f"--data-dir={data}",
            f"--listen-client-urls={self.etcd_url}", f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}", f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=harness=http://127.0.0.1:{peer}", "--logger=zap", "--log-level=warn",
            # etcd 3.4.23 (Debian) predates on-demand watch progress (3.4.31): without frequent
            # periodic progress notifications the API server's watch cache lags behind
            # etcd's revision and fresh watches fail with "Too large resource version".
            "--experimental-watch-progress-notify-interval=200ms",
        ])
        _wait("etcd", lambda: b'"true"' in urllib.request.urlopen(f"{self.etcd_url}/health", timeout=2).read(),
              timeout, process)

    def _start_apiserver(self, port: int, timeout: float) -> None:
        pki = self.pki
        process = self._spawn("kube-apiserver", [
            str(self.tools.hyperkube), "kube-apiserver",
            f"--etcd-servers={self.etcd_url}", "--bind-address=127.0.0.1", f"--secure-port={port}",
            "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none",
            f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--service-account-issuer={SA_ISSUER}", f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
            # Pod logs: the API server reaches a node's kubelet (kwok) at its InternalIP (127.0.0.1;
            # its Hostname address, the default first choice, resolves nowhere) and the node's
            # daemonEndpoints port, and verifies kwok's serving certificate against the harness CA.
            "--kubelet-preferred-address-types=InternalIP", f"--kubelet-certificate-authority={pki / 'ca.crt'}",
            # Streaming lists need the RequestWatchProgress storage feature, which etcd 3.4.23
            # (Debian) lacks (3.4.31+): the watch cache would answer every such request with an
            # error event and kwok's informers would miss pods. Off, clients get a clean refusal
            # and fall back to LIST + WATCH.
            "--feature-gates=WatchList=false",
            "--allow-privileged=false", "--profiling=false", f"--cert-dir={self.workdir / 'serving'}", "--v=1",
        ])
        for name in ("admin", "controller-manager", "scheduler", "kwok"):
            write_kubeconfig(self.workdir / f"{name}.kubeconfig", self.server, pki, name)
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        context.load_cert_chain(pki / "admin.crt", pki / "admin.key")
        _wait("kube-apiserver", lambda: urllib.request.urlopen(f"{self.server}/readyz", context=context,
                                                               timeout=5).status == 200, timeout, process, 0.5)
        # RBAC's bootstrap roles are written by a post-start hook; /readyz includes it.

    def _start_controllers(self, timeout: float) -> None:
        pki = self.pki
        kcm = self._spawn("kube-controller-manager", [
            str(self.tools.hyperkube), "kube-controller-manager",
            f"--kubeconfig={self.workdir / 'controller-manager.kubeconfig'}", "--leader-elect=false",
            "--secure-port=0", "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
            f"--controllers={','.join(CONTROLLERS)}", "--v=1",
        ])
        scheduler = self._spawn("kube-scheduler", [
            str(self.tools.hyperkube), "kube-scheduler",
            f"--kubeconfig={self.workdir / 'scheduler.kubeconfig'}", "--leader-elect=false",
            "--secure-port=0", "--v=1",
        ])
        kwok_home = self.workdir / "kwok-home"  # kwok also reads ~/.kwok/kwok.yaml: keep the user's out
        kwok_home.mkdir(exist_ok=True)
        kwok = self._spawn("kwok", [
            str(self.tools.kwok), f"--kubeconfig={self.workdir / 'kwok.kubeconfig'}", f"--config={STAGES}",
            "--manage-all-nodes=false", "--manage-nodes-with-label-selector=type=kwok",
            # The kubelet API of every fake node: node-initialize writes --node-ip into the nodes'
            # InternalIP address and --node-port into status.daemonEndpoints.kubeletEndpoint.Port.
            f"--server-address=127.0.0.1:{self.kubelet_port}", "--node-ip=127.0.0.1",
            f"--node-port={self.kubelet_port}", f"--tls-cert-file={pki / 'kwok-serving.crt'}",
            f"--tls-private-key-file={pki / 'kwok-serving.key'}", "--enable-crds=ClusterLogs",
        ], env={"HOME": str(kwok_home)})
        # The ServiceAccount controller creating `default` in kube-system proves the controller manager works.
        core = self.core()
        _wait("kube-controller-manager (ServiceAccount controller)",
              lambda: core.read_namespaced_service_account("default", "default") is not None, timeout, kcm)
        for process in (scheduler, kwok):
            if not process.alive():
                raise HarnessError(f"{process.name} exited with {process.proc.returncode}:\n{process.tail()}")
        _wait("kwok's kubelet server", lambda: self._kubelet_get("/healthz")[0] == 200, timeout, kwok)

    def _install_kwok_crds(self, timeout: float) -> None:
        """kwok's ClusterLogs CRD: kwok (--enable-crds=ClusterLogs) watches these objects for pod logs."""
        import yaml
        from kubernetes import client

        crd = yaml.safe_load(CLUSTER_LOGS_CRD.read_text())
        extensions = client.ApiextensionsV1Api(self.api_client())
        extensions.create_custom_resource_definition(crd)

        def established() -> bool:
            status = extensions.read_custom_resource_definition(crd["metadata"]["name"]).status
            return any(c.type == "Established" and c.status == "True" for c in status.conditions or [])

        _wait("kwok's ClusterLogs CRD established", established, timeout, self._process("kube-apiserver"))

    def _kubelet_get(self, path: str) -> tuple[int, str]:
        """GET ``path`` from kwok's kubelet server directly (HTTPS, verified): (status, body)."""
        import urllib.error

        context = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{self.kubelet_port}{path}", context=context,
                                        timeout=5) as response:
                return response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")

    def _add_nodes(self, nodes: tuple[FakeNode, ...], timeout: float) -> None:
        core = self.core()
        for node in nodes:
            core.create_node(node.manifest())

        def all_ready() -> bool:
            ready = 0
            for node in core.list_node(label_selector="type=kwok").items:
                conditions = {c.type: c.status for c in (node.status.conditions or [])}
                untainted = not any(t.key.startswith("node.kubernetes.io/") for t in node.spec.taints or [])
                ready += conditions.get("Ready") == "True" and untainted
            return ready == len(nodes)

        _wait(f"kwok making {len(nodes)} fake nodes Ready (and the node lifecycle controller untainting them)",
              all_ready, timeout, self._process("kwok"))

    def _add_volumes(self, count: int) -> None:
        """Static PersistentVolumes (no class) so StatefulSet claims bind without a provisioner."""
        core = self.core()
        for i in range(count):
            core.create_persistent_volume({
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": f"harness-pv-{i:02d}", "labels": {"harness": "static"}},
                "spec": {"capacity": {"storage": "100Gi"}, "accessModes": ["ReadWriteOnce"],
                         "persistentVolumeReclaimPolicy": "Retain",
                         "hostPath": {"path": f"/tmp/mindzoo-harness-pv-{i:02d}"}},
            })

    def _process(self, name: str) -> _Process:
        return next(p for p in self.processes if p.name == name)

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
        _wait(f"ServiceAccount default in {name}",
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

    @contextlib.contextmanager
    def pod_logs(self, namespace: str, lines: Sequence[str], *, pods: Sequence[str] = (),
                 container: str | None = None, timeout: float = 30) -> Iterator[Path]:
        """While the block runs, kwok serves ``lines`` as the log of the pods of ``namespace``
        (only those named in ``pods`` when given; only ``container`` when given), through the API
        server's ``pods/log`` like a kubelet: ``tailLines``, ``follow`` and the rest apply.

        A ClusterLogs object points kwok at a log file in the CRI format the kubelet reads; it is
        ready when kwok serves the file, and gone (kwok no longer serves it) when the block ends.
        Rules of several ClusterLogs matching one pod are tried in no fixed order: keep one per
        namespace at a time. Yields the log file.
        """
        name = f"logs-{namespace}-{time.monotonic_ns() % 10**9}"[:63]
        folder = self.workdir / "pod-logs" / name  # a folder per file: kwok's follow watches the folder
        folder.mkdir(parents=True)
        log_file = folder / "0.log"
        start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
        log_file.write_text("".join(  # <RFC3339Nano time> <stream> <F(ull)|P(artial)> <text>
            f"{(start + dt.timedelta(milliseconds=i)).strftime('%Y-%m-%dT%H:%M:%S.%f')}000Z stdout F {line}\n"
            for i, line in enumerate(lines)))
        selector: dict[str, Any] = {"matchNamespaces": [namespace]}
        if pods:
            selector["matchNames"] = list(pods)
        entry: dict[str, Any] = {"logsFile": str(log_file)}
        if container:
            entry["containers"] = [container]
        custom = self.custom()
        custom.create_cluster_custom_object("kwok.x-k8s.io", "v1alpha1", "clusterlogs", {
            "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterLogs", "metadata": {"name": name},
            "spec": {"selector": selector, "logs": [entry]}})
        probe = f"/containerLogs/{namespace}/{(pods or ['any-pod'])[0]}/{container or 'any-container'}"
        kwok = self._process("kwok")
        try:
            _wait(f"kwok serving the logs of {name}",
                  lambda: self._kubelet_get(probe)[0] == 200, timeout, kwok, 0.2)
            yield log_file
        finally:
            custom.delete_cluster_custom_object("kwok.x-k8s.io", "v1alpha1", "clusterlogs", name)
            if kwok.alive():
                _wait(f"kwok dropping the logs of {name}", lambda: self._kubelet_get(probe)[0] != 200,
                      timeout, kwok, 0.2)

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
        down = [f"{p.name} exited {p.proc.returncode}:\n{p.tail()}" for p in self.processes if not p.alive()]
        lines = down or [f"(all {len(self.processes)} control-plane processes running; logs in {self.workdir / 'logs'})"]
        try:
            for pod in self.core().list_pod_for_all_namespaces(timeout_seconds=10).items:
                if pod.status.phase in ("Succeeded",):
                    continue
                waiting = [f"{c.type}={c.status}{'(' + c.reason + ': ' + (c.message or '') + ')' if c.reason else ''}"
                           for c in pod.status.conditions or [] if c.status != "True"]
                lines.append(f"pod {pod.metadata.namespace}/{pod.metadata.name} on {pod.spec.node_name}: "
                             f"{pod.status.phase} {' '.join(waiting)}")
        except Exception as exc:  # noqa: BLE001 - diagnostics must not mask the failure
            lines.append(f"(could not list pods: {exc})")
        return "\n".join(lines)

    def cleanup_storage(self) -> None:
        if getattr(self, "etcd_data", None):
            shutil.rmtree(self.etcd_data, ignore_errors=True)
