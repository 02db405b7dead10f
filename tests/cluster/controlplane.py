"""The control plane of the cluster test harness: etcd (Debian's ``etcd-server``) and
kube-apiserver, kube-controller-manager and kube-scheduler from ``hyperkube``.

Two settings work around Debian's etcd 3.4.23, which predates on-demand watch
progress (3.4.31): etcd sends periodic progress notifications every 200 ms (the API
server's watch cache keeps up with etcd's revision), and the API server's
``WatchList`` feature is off (clients fall back to LIST + WATCH instead of streaming
lists the watch cache cannot serve).
"""

from __future__ import annotations

import os
import ssl
import urllib.request
from pathlib import Path
from typing import Callable

from kubepki import SERVICE_CIDR
from procs import Process, free_port, wait

#: Issuer (and audience) of the service-account tokens the API server signs.
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"

#: Controllers kube-controller-manager runs: what Jobs, Deployments, StatefulSets,
#: Services, namespaces, ServiceAccounts and volume claims need, and node lifecycle
#: (it lifts the `node.kubernetes.io/not-ready` taint new nodes get once they are
#: Ready, and watches the leases their kubelets renew).
CONTROLLERS = ("node-lifecycle-controller",
    "job-controller", "ttl-after-finished-controller", "deployment-controller", "replicaset-controller",
    "statefulset-controller", "endpointslice-controller", "endpoints-controller", "serviceaccount-controller",
    "serviceaccount-token-controller", "root-ca-certificate-publisher-controller", "namespace-controller",
    "garbage-collector-controller", "pod-garbage-collector-controller", "persistentvolume-binder-controller",
    "persistentvolumeclaim-protection-controller", "persistentvolume-protection-controller",
    "clusterrole-aggregation-controller", "service-cidr-controller", "disruption-controller",
)

Spawn = Callable[..., Process]


def start_etcd(spawn: Spawn, workdir: Path, timeout: float) -> tuple[str, Path]:
    """etcd on loopback; its data on /dev/shm when writable (fsync-heavy etcd is the slowest part on a
    small disk), else in ``workdir`` (``$MINDZOO_ETCD_DIR`` overrides). Returns (client URL, data dir)."""
    client, peer = free_port(), free_port()
    shm = Path("/dev/shm")
    base = Path(os.environ.get("MINDZOO_ETCD_DIR", shm if os.access(shm, os.W_OK) else workdir))
    data = base / f"mindzoo-etcd-{os.getpid()}-{client}"
    url = f"http://127.0.0.1:{client}"
    process = spawn("etcd", ["etcd", "--name=harness", f"--data-dir={data}",
        f"--listen-client-urls={url}", f"--advertise-client-urls={url}",
        f"--listen-peer-urls=http://127.0.0.1:{peer}", f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-cluster=harness=http://127.0.0.1:{peer}", "--logger=zap", "--log-level=warn",
        "--experimental-watch-progress-notify-interval=200ms"])
    wait("etcd", lambda: b'"true"' in urllib.request.urlopen(f"{url}/health", timeout=2).read(), timeout, process)
    return url, data


def start_apiserver(spawn: Spawn, *, workdir: Path, etcd_url: str, host: str, port: int, timeout: float) -> None:
    """kube-apiserver on ``host:port`` (loopback for fake nodes; the host's end of the node link for a real
    node, whose kubelet and pods must reach it) with TLS, client certificates, ``Node,RBAC`` and the default
    admission plugins (PodSecurity included)."""
    pki = workdir / "pki"
    process = spawn("kube-apiserver", ["hyperkube", "kube-apiserver",
        f"--etcd-servers={etcd_url}", f"--bind-address={host}", f"--secure-port={port}",
        f"--advertise-address={host}",
        # Loopback: no `kubernetes` Service endpoints (nothing in a pod could use them). Real node: the
        # endpoint pods reach the API server at.
        f"--endpoint-reconciler-type={'none' if host.startswith('127.') else 'lease'}",
        f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        f"--service-account-issuer={SA_ISSUER}", f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}", f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
        # Pod logs, exec and port-forward: the API server reaches a node's kubelet at its InternalIP (its
        # Hostname address, the default first choice, resolves nowhere), verifies the kubelet's serving
        # certificate against the harness CA and authenticates with a client certificate.
        "--kubelet-preferred-address-types=InternalIP", f"--kubelet-certificate-authority={pki / 'ca.crt'}",
        f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
        f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
        "--feature-gates=WatchList=false",
        "--allow-privileged=false", "--profiling=false", f"--cert-dir={workdir / 'serving'}", "--v=1"])
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(pki / "admin.crt", pki / "admin.key")
    # /readyz includes the post-start hook that writes RBAC's bootstrap roles.
    wait("kube-apiserver", lambda: urllib.request.urlopen(f"https://{host}:{port}/readyz", context=context,
                                                          timeout=5).status == 200, timeout, process, 0.5)


def start_controllers(spawn: Spawn, workdir: Path) -> tuple[Process, Process]:
    """kube-controller-manager and kube-scheduler; the caller waits for them through the API."""
    pki = workdir / "pki"
    kcm = spawn("kube-controller-manager", ["hyperkube", "kube-controller-manager",
        f"--kubeconfig={workdir / 'controller-manager.kubeconfig'}", "--leader-elect=false",
        "--secure-port=0", "--use-service-account-credentials=true",
        f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
        f"--controllers={','.join(CONTROLLERS)}", "--v=1"])
    scheduler = spawn("kube-scheduler", ["hyperkube", "kube-scheduler",
        f"--kubeconfig={workdir / 'scheduler.kubeconfig'}", "--leader-elect=false", "--secure-port=0", "--v=1"])
    return kcm, scheduler
