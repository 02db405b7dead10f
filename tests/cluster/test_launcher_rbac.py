"""The chart's pipeline ServiceAccount, impersonated on the real API server: what the
distributed launcher does is allowed, anything else is forbidden."""

from __future__ import annotations

import pytest

from launcher_objects import headless_service, worker_job

pytestmark = [pytest.mark.control, pytest.mark.cluster]

#: (apiGroup, resource, verb) the launcher Role grants, nothing more (test_launcher.py checks that the
#: launcher's recorded calls are exactly these).
GRANTED = {(group, resource, v) for group, resource in (("batch", "jobs"), ("trainer.kubeflow.org", "trainjobs"))
           for v in ("create", "get", "delete")} | {
    ("", "services", v) for v in ("create", "delete")} | {("", "pods", "list"), ("", "pods/log", "get")}
#: What every authenticated user may do (system:basic-user): ask about itself.
SELF_REVIEWS = {("authorization.k8s.io", "selfsubjectaccessreviews", "create"),
                ("authorization.k8s.io", "selfsubjectrulesreviews", "create"),
                ("authentication.k8s.io", "selfsubjectreviews", "create")}


@pytest.fixture(scope="module")
def as_launcher(cluster, mindzoo_release):
    return cluster.impersonate(mindzoo_release["namespace"], mindzoo_release["service_account"])


def forbidden(call) -> bool:
    from kubernetes.client.rest import ApiException

    try:
        call()
    except ApiException as exc:
        if exc.status == 403:
            return True
        raise
    return False


def test_the_service_account_has_exactly_the_launcher_rules(cluster, mindzoo_release, as_launcher):
    from kubernetes import client

    review = client.AuthorizationV1Api(as_launcher).create_self_subject_rules_review(
        {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
         "spec": {"namespace": mindzoo_release["namespace"]}})
    triples = {(group, resource, verb) for rule in review.status.resource_rules
               for group in rule.api_groups for resource in rule.resources for verb in rule.verbs}
    assert triples == GRANTED | SELF_REVIEWS


def test_the_launcher_can_create_its_job_and_service(cluster, mindzoo_release, as_launcher):
    from kubernetes import client

    ns = mindzoo_release["namespace"]
    pool = mindzoo_release["defaults"]["MINDZOO_NODE_POOLS"]["ascend910"]
    batch, core = client.BatchV1Api(as_launcher), client.CoreV1Api(as_launcher)
    core.create_namespaced_service(ns, headless_service("rbac-probe"))
    batch.create_namespaced_job(ns, worker_job("rbac-probe", pool))
    assert batch.read_namespaced_job("rbac-probe", ns).spec.completion_mode == "Indexed"
    cluster.wait_for("the probe's worker pods",
                     lambda: core.list_namespaced_pod(ns, label_selector="app=rbac-probe").items)
    batch.delete_namespaced_job("rbac-probe", ns, propagation_policy="Background")
    core.delete_namespaced_service("rbac-probe", ns)


def _raise_forbidden():
    from kubernetes.client.rest import ApiException

    raise ApiException(status=403, reason="not allowed (SelfSubjectAccessReview)")


@pytest.mark.parametrize("what", ["cluster role", "secret read", "secret create", "config map", "pod", "deployment",
                                  "job patch", "job list", "job finalizers", "service list", "service read",
                                  "pod read", "job in another namespace", "role binding", "trainjob list",
                                  "trainjob patch", "training runtime"])
def test_anything_else_is_forbidden(cluster, mindzoo_release, as_launcher, what):
    from kubernetes import client

    ns = mindzoo_release["namespace"]
    pool = mindzoo_release["defaults"]["MINDZOO_NODE_POOLS"]["ascend910"]
    core, batch = client.CoreV1Api(as_launcher), client.BatchV1Api(as_launcher)
    calls = {
        "cluster role": lambda: client.RbacAuthorizationV1Api(as_launcher).create_cluster_role(
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "escalate"},
             "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}),
        "secret read": lambda: core.read_namespaced_secret("mindzoo-minio", ns),
        "secret create": lambda: core.create_namespaced_secret(
            ns, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}, "stringData": {"k": "v"}}),
        "config map": lambda: core.create_namespaced_config_map(
            ns, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
        "pod": lambda: core.create_namespaced_pod(ns, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
            "spec": worker_job("x", pool)["spec"]["template"]["spec"]}),
        "deployment": lambda: client.AppsV1Api(as_launcher).create_namespaced_deployment(ns, {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
                "metadata": {"labels": {"a": "b"}}, "spec": worker_job("x", pool)["spec"]["template"]["spec"]}}}),
        "job patch": lambda: batch.patch_namespaced_job("anything", ns, {"spec": {"parallelism": 0}}),
        "job list": lambda: batch.list_namespaced_job(ns),
        "job finalizers": lambda: client.AuthorizationV1Api(as_launcher).create_self_subject_access_review(
            {"spec": {"resourceAttributes": {"namespace": ns, "group": "batch", "resource": "jobs",
                                             "subresource": "finalizers", "verb": "update"}}}).status.allowed
        or _raise_forbidden(),
        "service list": lambda: core.list_namespaced_service(ns),
        "service read": lambda: core.read_namespaced_service("mindzoo-minio", ns),
        "pod read": lambda: core.read_namespaced_pod("anything", ns),
        "job in another namespace": lambda: batch.create_namespaced_job("default", worker_job("x", pool)),
        # The Trainer API need not exist for these: RBAC answers before the resource is looked up.
        "trainjob list": lambda: client.CustomObjectsApi(as_launcher).list_namespaced_custom_object(
            "trainer.kubeflow.org", "v1alpha1", ns, "trainjobs"),
        "trainjob patch": lambda: client.CustomObjectsApi(as_launcher).patch_namespaced_custom_object(
            "trainer.kubeflow.org", "v1alpha1", ns, "trainjobs", "anything", {"spec": {"suspend": True}}),
        "training runtime": lambda: client.CustomObjectsApi(as_launcher).create_cluster_custom_object(
            "trainer.kubeflow.org", "v1alpha1", "clustertrainingruntimes",
            {"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "ClusterTrainingRuntime",
             "metadata": {"name": "escalate"}, "spec": {}}),
        "role binding": lambda: client.RbacAuthorizationV1Api(as_launcher).create_namespaced_role_binding(ns, {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "x"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
            "subjects": [{"kind": "ServiceAccount", "name": mindzoo_release["service_account"], "namespace": ns}]}),
    }
    assert forbidden(calls[what]), f"the pipeline ServiceAccount was allowed: {what}"


def test_the_real_token_has_the_same_rights(cluster, mindzoo_release):
    from kubernetes import client

    ns = mindzoo_release["namespace"]
    api = cluster.service_account_client(ns, mindzoo_release["service_account"])
    client.CoreV1Api(api).list_namespaced_pod(ns)
    assert forbidden(lambda: client.CoreV1Api(api).list_namespaced_secret(ns))
