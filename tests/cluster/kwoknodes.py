"""Fake nodes for the tests that need nodes this machine cannot have (Ascend and GPU
pools): **kwok** plays their kubelet. Pods scheduled onto them become Running/Ready,
pods that are not ``restartPolicy: Always`` then Succeed, and pods labelled
:data:`FAIL_LABEL` fail (``kwok-stages.yaml``). No container runs.

kwok also serves the kubelet API (HTTPS, a certificate from the harness CA) on
127.0.0.1, the fake nodes' InternalIP and ``daemonEndpoints`` port: the API server
verifies it and proxies ``pods/log`` to it, and kwok answers with the log file a
``ClusterLogs`` object (kwok's CRD, installed here) names for the pod;
:func:`pod_logs` sets one up for a test.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from fakenodes import FakeNode
from procs import Process, wait

HERE = Path(__file__).resolve().parent
STAGES = HERE / "kwok-stages.yaml"
CLUSTER_LOGS_CRD = HERE / "kwok-clusterlogs-crd.yaml"
#: Pods with this label are failed by kwok (exit code 1) instead of completing.
FAIL_LABEL = "pod-container-running-failed.stage.kwok.x-k8s.io"
#: Pods with this label stay Running (kwok does not complete them) until the label is removed.
HOLD_LABEL = "mindzoo.test/hold"


class Kwok:
    """kwok's process and its kubelet server (one port on 127.0.0.1 for every fake node)."""

    def __init__(self, spawn: Callable[..., Process], workdir: Path, port: int):
        self.workdir, self.port, self.pki = workdir, port, workdir / "pki"
        home = workdir / "kwok-home"  # kwok also reads ~/.kwok/kwok.yaml: keep the user's out
        home.mkdir(exist_ok=True)
        self.process = spawn("kwok", [
            "kwok", f"--kubeconfig={workdir / 'kwok.kubeconfig'}", f"--config={STAGES}",
            "--manage-all-nodes=false", "--manage-nodes-with-label-selector=type=kwok",
            # node-initialize writes --node-ip into the nodes' InternalIP address and --node-port into
            # status.daemonEndpoints.kubeletEndpoint.Port.
            f"--server-address=127.0.0.1:{port}", "--node-ip=127.0.0.1", f"--node-port={port}",
            f"--tls-cert-file={self.pki / 'kwok-serving.crt'}", f"--tls-private-key-file={self.pki / 'kwok-serving.key'}",
            "--enable-crds=ClusterLogs",
        ], env={"HOME": str(home)})

    def kubelet_get(self, path: str) -> tuple[int, str]:
        """GET ``path`` from kwok's kubelet server directly (HTTPS, verified): (status, body)."""
        context = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{self.port}{path}", context=context,
                                        timeout=5) as response:
                return response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")

    def wait_serving(self, timeout: float) -> None:
        wait("kwok's kubelet server", lambda: self.kubelet_get("/healthz")[0] == 200, timeout, self.process)


def install_crds(api_client, timeout: float, apiserver: Process) -> None:
    """kwok's ClusterLogs CRD: kwok (--enable-crds=ClusterLogs) watches these objects for pod logs."""
    import yaml
    from kubernetes import client

    crd = yaml.safe_load(CLUSTER_LOGS_CRD.read_text())
    extensions = client.ApiextensionsV1Api(api_client)
    extensions.create_custom_resource_definition(crd)

    def established() -> bool:
        status = extensions.read_custom_resource_definition(crd["metadata"]["name"]).status
        return any(c.type == "Established" and c.status == "True" for c in status.conditions or [])

    wait("kwok's ClusterLogs CRD established", established, timeout, apiserver)


def add_nodes(core, nodes: tuple[FakeNode, ...], timeout: float, kwok: Process) -> None:
    for node in nodes:
        core.create_node(node.manifest())

    def all_ready() -> bool:
        ready = 0
        for node in core.list_node(label_selector="type=kwok").items:
            conditions = {c.type: c.status for c in (node.status.conditions or [])}
            untainted = not any(t.key.startswith("node.kubernetes.io/") for t in node.spec.taints or [])
            ready += conditions.get("Ready") == "True" and untainted
        return ready == len(nodes)

    wait(f"kwok making {len(nodes)} fake nodes Ready (and the node lifecycle controller untainting them)",
         all_ready, timeout, kwok)


@contextlib.contextmanager
def pod_logs(kwok: Kwok, custom, namespace: str, lines: Sequence[str], *, pods: Sequence[str] = (),
             container: str | None = None, timeout: float = 30) -> Iterator[Path]:
    """While the block runs, kwok serves ``lines`` as the log of the pods of ``namespace`` (only those
    named in ``pods`` when given; only ``container`` when given), through the API server's ``pods/log``
    like a kubelet: ``tailLines``, ``follow`` and the rest apply.

    A ClusterLogs object points kwok at a log file in the CRI format the kubelet reads; it is ready when
    kwok serves the file, and gone (kwok no longer serves it) when the block ends. Rules of several
    ClusterLogs matching one pod are tried in no fixed order: keep one per namespace at a time. Yields
    the log file.
    """
    name = f"logs-{namespace}-{time.monotonic_ns() % 10**9}"[:63]
    folder = kwok.workdir / "pod-logs" / name  # a folder per file: kwok's follow watches the folder
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
    custom.create_cluster_custom_object("kwok.x-k8s.io", "v1alpha1", "clusterlogs", {
        "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterLogs", "metadata": {"name": name},
        "spec": {"selector": selector, "logs": [entry]}})
    probe = f"/containerLogs/{namespace}/{(pods or ['any-pod'])[0]}/{container or 'any-container'}"
    try:
        wait(f"kwok serving the logs of {name}", lambda: kwok.kubelet_get(probe)[0] == 200, timeout,
             kwok.process, 0.2)
        yield log_file
    finally:
        custom.delete_cluster_custom_object("kwok.x-k8s.io", "v1alpha1", "clusterlogs", name)
        if kwok.process.alive():
            wait(f"kwok dropping the logs of {name}", lambda: kwok.kubelet_get(probe)[0] != 200, timeout,
                 kwok.process, 0.2)
