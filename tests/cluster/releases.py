"""What a Helm release of charts/mindzoo left in a namespace, by kind (the install, upgrade and
uninstall tests on fake and real nodes read it)."""

from __future__ import annotations

INSTANCE = "app.kubernetes.io/instance"


def owned(cluster, ns: str, release: str) -> dict[str, list[str]]:
    """Names of the release's objects still present, by kind."""
    from kubernetes import client

    api = cluster.api_client()
    core, apps, batch = client.CoreV1Api(api), client.AppsV1Api(api), client.BatchV1Api(api)
    rbac, net = client.RbacAuthorizationV1Api(api), client.NetworkingV1Api(api)
    selector = f"{INSTANCE}={release}"
    listers = {
        "Deployment": apps.list_namespaced_deployment, "StatefulSet": apps.list_namespaced_stateful_set,
        "Service": core.list_namespaced_service, "Secret": core.list_namespaced_secret,
        "ConfigMap": core.list_namespaced_config_map, "ServiceAccount": core.list_namespaced_service_account,
        "Role": rbac.list_namespaced_role, "RoleBinding": rbac.list_namespaced_role_binding,
        "Job": batch.list_namespaced_job, "Pod": core.list_namespaced_pod,
        "NetworkPolicy": net.list_namespaced_network_policy,
        "PersistentVolumeClaim": core.list_namespaced_persistent_volume_claim,
    }
    found = {kind: sorted(o.metadata.name for o in list_(ns, label_selector=selector).items)
             for kind, list_ in listers.items()}
    return {kind: names for kind, names in found.items() if names}


def secret_data(cluster, ns: str, release: str) -> dict[str, dict[str, str]]:
    secrets = cluster.core().list_namespaced_secret(ns, label_selector=f"{INSTANCE}={release}").items
    return {s.metadata.name: s.data for s in secrets}
