"""The real node of the cluster harness: pods really run on it (containerd + runc), under the
"restricted" Pod Security Standard, find Services through CoreDNS, reach them through
kube-proxy's rules, and their logs come from the kubelet through the API server.

Every test here uses the real node (``real_cluster``); none uses kwok.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

import hoststate
from nodenet import NODE_IP, POD_CIDR
from realnode import KUBELET_PORT, NODE_NAME, footprint

pytestmark = [pytest.mark.control, pytest.mark.cluster, pytest.mark.realnode]

RESTRICTED = {"runAsNonRoot": True, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
              "seccompProfile": {"type": "RuntimeDefault"}}


def _pod(name: str, image: str, script: str, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False, **spec,
                     "containers": [{"name": "main", "image": image, "imagePullPolicy": "Never",
                                     "command": ["python3", "-c", script], "securityContext": RESTRICTED}]}}


@pytest.fixture
def rns(real_cluster) -> str:
    """A fresh namespace on the real-node cluster, enforcing the "restricted" Pod Security Standard."""
    return real_cluster.create_namespace(f"r-{uuid.uuid4().hex[:8]}")


def _finished(core, name: str, ns: str):
    pod = core.read_namespaced_pod(name, ns)
    return pod if pod.status.phase in ("Succeeded", "Failed") else None


def test_a_node_that_cannot_start_says_why_in_one_line_and_leaves_nothing_behind(tmp_path):
    """First in this module, before the session's real node exists (one real node at a time): something
    already listens on the kubelet's port, so the kubelet cannot start."""
    import kubeharness

    squatter: list[subprocess.Popen] = []

    def take_the_kubelet_port(net) -> None:
        script = (f"import socket, time; s = socket.socket(); s.bind(('{NODE_IP}', {KUBELET_PORT})); s.listen(); "
                  "print('bound', flush=True); time.sleep(600)")
        proc = subprocess.Popen([*net.nsenter(), "python3", "-c", script], stdout=subprocess.PIPE, text=True)
        squatter.append(proc)
        assert proc.stdout.readline().strip() == "bound"

    host = hoststate.HostState()
    workdir = tmp_path / "failing"
    try:
        with pytest.raises(kubeharness.HarnessError) as failed:
            kubeharness.Cluster.start(workdir, real_node=True, timeout=60, before_node=take_the_kubelet_port)
    finally:
        for proc in squatter:
            proc.kill()
            proc.wait()
    message = str(failed.value)
    assert "\n" not in message, message
    assert message.startswith("the real node cannot start: kubelet exited") and "address already in use" in message, message
    assert host.leftovers(**footprint(workdir / "node")) == []
    links = json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True, text=True).stdout)
    assert not [link["ifname"] for link in links if link["ifname"].startswith("mzkh")]
    routes = subprocess.run(["ip", "route", "show", POD_CIDR], capture_output=True, text=True).stdout
    assert routes.strip() == ""
    # kube-proxy's and the kubelet's chains live in the node's netns (podman's own CNI-* chains may be here)
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    assert "KUBE-" not in rules


def test_a_killed_runs_node_is_put_away_by_the_next_start(tmp_path):
    """Also before the session's real node: a test process killed outright (SIGKILL, no teardown) leaves its
    node running; the next harness start finds it (its owner is dead) and puts the machine back."""
    import select
    import sys

    here = Path(__file__).resolve().parent
    workdir = tmp_path / "killed"
    script = (f"import sys, time, pathlib; sys.path[:0] = [{str(here)!r}, {str(here.parents[1])!r}]; import kubeharness; "
              f"kubeharness.Cluster.start(pathlib.Path({str(workdir)!r}), real_node=True, timeout=120); "
              "print('up', flush=True); time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 180)
        assert ready and proc.stdout.readline().strip() == "up", proc.stderr.read() if proc.poll() is not None else ""
        host = hoststate.HostState.load(Path(footprint(workdir / "node", proc.pid)["folders"][2]) / "host.json")
    finally:
        proc.kill()
        proc.wait()
    assert hoststate.processes_of([str(workdir)]), "the killed run's node should still be running"
    assert hoststate.clean_stale() == [f"cleaned up the real node of process {proc.pid}, which had been killed "
                                       f"(/var/lib/mindzoo-node-{proc.pid})"]
    assert host.leftovers(**footprint(workdir / "node", proc.pid)) == []
    assert not hoststate.processes_of([str(workdir)])


def test_the_node_is_a_real_kubelet_on_containerd_with_its_own_address(real_cluster):
    node = real_cluster.core().read_node(NODE_NAME)
    assert {a.type: a.address for a in node.status.addresses}["InternalIP"] == NODE_IP
    assert node.status.node_info.container_runtime_version.startswith("containerd://")
    assert node.status.node_info.kubelet_version.startswith("v1.")
    assert "kwok.x-k8s.io/node" not in (node.metadata.annotations or {})


def test_a_pod_runs_the_cpu_image_resolves_services_and_its_log_comes_from_the_kubelet(real_cluster, rns):
    from components.images import CPU

    core = real_cluster.core()
    kubernetes_ip = core.read_namespaced_service("kubernetes", "default").spec.cluster_ip
    script = ("import socket, mindspore; print('mindspore', mindspore.__version__); "
              "ip = socket.gethostbyname('kubernetes.default.svc.cluster.local'); print('dns', ip); "
              "socket.create_connection((ip, 443), timeout=10).close(); print('service reached')")
    core.create_namespaced_pod(rns, _pod("probe", CPU, script))
    pod = real_cluster.wait_for("pod probe finished", lambda: _finished(core, "probe", rns), 180)
    log = core.read_namespaced_pod_log("probe", rns)
    assert pod.status.phase == "Succeeded", log
    assert pod.spec.node_name == NODE_NAME
    assert f"dns {kubernetes_ip}" in log and "service reached" in log and "mindspore 2." in log


def test_a_failing_container_fails_its_pod_with_its_exit_code_and_log(real_cluster, rns):
    from components.images import CPU

    core = real_cluster.core()
    core.create_namespaced_pod(rns, _pod("fails", CPU, "import sys; print('about to fail'); sys.exit(3)"))
    pod = real_cluster.wait_for("pod fails finished", lambda: _finished(core, "fails", rns), 180)
    assert pod.status.phase == "Failed"
    assert pod.status.container_statuses[0].state.terminated.exit_code == 3
    assert core.read_namespaced_pod_log("fails", rns) == "about to fail\n"


def test_restricted_pod_security_is_enforced_on_the_real_node(real_cluster, rns):
    from kubernetes.client.exceptions import ApiException

    from components.images import CPU

    privileged = _pod("root", CPU, "print(1)")
    privileged["spec"]["containers"][0]["securityContext"] = {"runAsUser": 0}
    with pytest.raises(ApiException) as refused:
        real_cluster.core().create_namespaced_pod(rns, privileged)
    assert refused.value.status == 403 and "restricted" in refused.value.body


def test_a_rebuilt_image_replaces_the_old_build_in_the_nodes_store(real_cluster):
    """The store lives between runs: an import that left the previous build's layers behind grew it by a whole
    image per rebuild."""
    from nodeimages import build_scratch, podman_env

    images, name = real_cluster.images(), f"localhost/mindzoo-prune-probe:{uuid.uuid4().hex[:8]}"
    tools, containerfile = real_cluster.tools, "FROM scratch\nCOPY stamp /stamp\n"
    try:
        build_scratch(tools, name, {"stamp": b"first build"}, containerfile)
        images.ensure(name)
        first = images.refs()[name]
        build_scratch(tools, name, {"stamp": b"second build"}, containerfile)
        images.ensure(name)
        refs = images.refs()
        assert refs[name] != first
        assert [ref for ref, digest in refs.items() if digest == first] == []
        assert not images.has_content(first)
        assert images.has_content(refs[name])
    finally:
        subprocess.run([str(tools.podman), "rmi", "-f", name], capture_output=True, timeout=120, env=podman_env())
        images.remove(name)
