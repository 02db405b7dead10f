"""The cluster harness itself: a real API server with RBAC and signed service-account
tokens, controllers that act, a scheduler, and kwok nodes that look like the
device plugins' nodes and serve pod logs through the API server."""

from __future__ import annotations

import pytest

from kubeharness import NODES

pytestmark = [pytest.mark.control, pytest.mark.cluster]


def test_fake_nodes_advertise_the_device_plugins_resources_labels_and_taints(cluster):
    nodes = {n.metadata.name: n for n in cluster.core().list_node().items}
    assert set(nodes) == {n.name for n in NODES}
    for node in nodes.values():
        ready = {c.type: c.status for c in node.status.conditions}["Ready"]
        assert ready == "True", node.metadata.name
    expected = {"ascend910-0": ("huawei.com/Ascend910", "8", "huawei-Ascend910"),
                "ascend310-0": ("huawei.com/Ascend310", "4", "huawei-Ascend310"),
                "gpu-0": ("nvidia.com/gpu", "8", "nvidia-gpu")}
    for name, (resource, count, accelerator) in expected.items():
        node = nodes[name]
        assert node.status.allocatable[resource] == count
        assert node.metadata.labels["accelerator"] == accelerator
        assert [(t.key, t.effect) for t in node.spec.taints] == [(resource, "NoSchedule")]
    assert not nodes["cpu-0"].spec.taints


def test_rbac_is_enforced(cluster, namespace):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    with pytest.raises(ApiException) as denied:
        client.CoreV1Api(cluster.api_client(user="nobody")).list_namespaced_pod(namespace)
    assert denied.value.status == 403


def test_service_account_tokens_are_signed_and_authenticated(cluster, namespace):
    from kubernetes import client

    api = cluster.service_account_client(namespace, "default")
    review = client.AuthenticationV1Api(api).create_self_subject_review(
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert review.status.user_info.username == f"system:serviceaccount:{namespace}:default"
    assert f"system:serviceaccounts:{namespace}" in review.status.user_info.groups


def test_a_deployment_gets_ready_pods_on_the_untainted_nodes(cluster, namespace):
    from kubernetes import client

    restricted = {"runAsNonRoot": True, "runAsUser": 1000, "allowPrivilegeEscalation": False,
                  "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
    labels = {"app": "web"}
    client.AppsV1Api(cluster.api_client()).create_namespaced_deployment(namespace, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "web", "image": "example/web:1", "securityContext": restricted}]}}}})
    apps = client.AppsV1Api(cluster.api_client())
    cluster.wait_for("3 ready replicas", lambda: apps.read_namespaced_deployment("web", namespace).status.ready_replicas == 3)
    pods = cluster.core().list_namespaced_pod(namespace, label_selector="app=web").items
    assert {p.spec.node_name for p in pods} <= {"cpu-0", "cpu-1"}, "tainted accelerator nodes took a plain pod"
    assert all(p.status.pod_ip for p in pods)


def test_pod_security_admission_rejects_a_privileged_pod(cluster, namespace):
    from kubernetes.client.rest import ApiException

    with pytest.raises(ApiException) as denied:
        cluster.core().create_namespaced_pod(namespace, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "root"},
            "spec": {"containers": [{"name": "c", "image": "example/c:1"}]}})
    assert denied.value.status == 403 and "restricted" in denied.value.body


def test_pod_logs_come_through_the_api_server_from_kwoks_kubelet_endpoint(cluster, namespace):
    from kubernetes.client.rest import ApiException

    core = cluster.core()
    lines = [f"step {i}: loss={1 / i:.3f}" for i in range(1, 8)]
    restricted = {"runAsNonRoot": True, "runAsUser": 1000, "allowPrivilegeEscalation": False,
                  "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
    core.create_namespaced_pod(namespace, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "talker"},
        "spec": {"containers": [{"name": "main", "image": "example/talker:1", "securityContext": restricted}]}})
    pod = cluster.wait_for("pod talker Running", lambda: (p := core.read_namespaced_pod("talker", namespace))
                           .status.phase == "Running" and p)
    node = core.read_node(pod.spec.node_name)
    assert {a.type: a.address for a in node.status.addresses}["InternalIP"] == "127.0.0.1"
    assert node.status.daemon_endpoints.kubelet_endpoint.port == cluster.kwok.port
    with cluster.pod_logs(namespace, lines):
        assert core.read_namespaced_pod_log("talker", namespace) == "".join(f"{line}\n" for line in lines)
        assert core.read_namespaced_pod_log("talker", namespace, tail_lines=2) == f"{lines[-2]}\n{lines[-1]}\n"
        stamped = core.read_namespaced_pod_log("talker", namespace, tail_lines=1, timestamps=True)
        assert stamped.startswith("2026-01-01T00:00:00.006") and stamped.endswith(f" {lines[-1]}\n")
    with pytest.raises(ApiException) as no_rule:  # kwok's answer without a matching ClusterLogs
        core.read_namespaced_pod_log("talker", namespace)
    assert "no logs found" in no_rule.value.body
