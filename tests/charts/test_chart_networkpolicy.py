"""charts/mindzoo's NetworkPolicies as rendered by the real Helm: on by default, admitting only the
clients each server has. (The test clusters' network plugins do not enforce NetworkPolicy: what
they deny is checked here, by shape; tests/cluster/test_realnode_chart.py checks that what they allow
still flows.)"""

from __future__ import annotations

import pytest

from chartkit import by_kind

pytestmark = [pytest.mark.control]


def render(chart, combo, values=None):
    return chart.template(values, *([combo] if combo else []))


def test_network_policies_are_on_by_default_and_admit_only_the_clients(chart):
    assert by_kind(render(chart, None, {"networkPolicy": {"enabled": False}}), "NetworkPolicy") == []
    policies = {p["metadata"]["name"]: p for p in by_kind(render(chart, None), "NetworkPolicy")}
    assert set(policies) == {"rel-mindzoo-mlflow", "rel-mindzoo-minio", "rel-mindzoo-postgresql"}
    release = {"app.kubernetes.io/name": "mindzoo", "app.kubernetes.io/instance": "rel"}
    db_from = policies["rel-mindzoo-postgresql"]["spec"]["ingress"][0]["from"]
    assert db_from == [{"podSelector": {"matchLabels": {**release, "app.kubernetes.io/component": "mlflow"}}}]
    clients = [{"podSelector": {"matchLabels": {**release, "app.kubernetes.io/component": "setup"}}},
               {"podSelector": {"matchLabels": {**release, "app.kubernetes.io/component": "test"}}},
               {"podSelector": {"matchLabels": {"pipelines.kubeflow.org/v2_component": "true"}}},
               {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "mindzoo",
                                                "app.kubernetes.io/component": "train"}}}]
    # Nothing but MLflow and the clients (no blanket `podSelector: {}` for the whole namespace).
    assert policies["rel-mindzoo-mlflow"]["spec"]["ingress"][0]["from"] == clients
    assert policies["rel-mindzoo-minio"]["spec"]["ingress"][0]["from"] == [
        {"podSelector": {"matchLabels": {**release, "app.kubernetes.io/component": "mlflow"}}}, *clients]
    # The launcher's worker pods carry the labels the policies admit.
    from mindzoo.launcher import LaunchSpec, job_manifest

    worker = job_manifest(LaunchSpec(name="w", image="i", command=("c",)))["spec"]["template"]["metadata"]["labels"]
    assert {"app.kubernetes.io/name": "mindzoo", "app.kubernetes.io/component": "train"}.items() <= worker.items()


def test_network_policies_open_to_task_namespaces_kfp_and_an_ingress(chart):
    ingress = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    docs = render(chart, "networkpolicy-values.yaml", {
        "networkPolicy": {"taskNamespaces": [{"kubernetes.io/metadata.name": "team-a"}],
                          "mlflowIngressFrom": [ingress]}})
    policies = {p["metadata"]["name"]: p for p in by_kind(docs, "NetworkPolicy")}
    mlflow_from = policies["rel-mindzoo-mlflow"]["spec"]["ingress"][0]["from"]
    minio_from = policies["rel-mindzoo-minio"]["spec"]["ingress"][0]["from"]
    kubeflow = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kubeflow"}}}
    team_tasks = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "team-a"}},
                  "podSelector": {"matchLabels": {"pipelines.kubeflow.org/v2_component": "true"}}}
    assert kubeflow in mlflow_from and kubeflow in minio_from and team_tasks in minio_from
    assert ingress in mlflow_from and ingress not in minio_from
    minio_ports = [p["port"] for p in policies["rel-mindzoo-minio"]["spec"]["ingress"][0]["ports"]]
    assert minio_ports == ["s3", "console"]
