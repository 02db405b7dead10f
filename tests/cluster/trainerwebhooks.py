"""The admission webhook configurations of Kubeflow Trainer and JobSet, rendered from their
upstream manifests (in the Go module cache) for controllers that run as processes on this
machine: each webhook's ``clientConfig.service`` becomes ``url: https://HOST:PORT<path>``
with the test's CA as ``caBundle``.

Upstream renders them with kustomize: ``manifests.yaml`` plus the JSON 6902 patches its
``kustomization.yaml`` lists (JobSet's add the pod webhooks' objectSelector, so only JobSet
pods need the webhook; Trainer's rename the configurations to the names its binary expects),
and an overlay's ``namePrefix``. Those patches only ``add`` and ``replace``; anything else is
refused rather than half-applied.
"""

from __future__ import annotations

import base64
import copy
from pathlib import Path

import yaml

from procs import HarnessError


def _pointer(doc, path: str) -> tuple[object, str | int]:
    """The parent container and the last key of an RFC 6901 pointer."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]
    node = doc
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last: str | int = parts[-1]
    if isinstance(node, list):
        last = len(node) if last == "-" else int(last)
    return node, last


def apply_patch(doc: dict, ops: list[dict], source: Path) -> None:
    """Apply JSON 6902 ``add``/``replace`` operations to ``doc`` in place."""
    for op in ops:
        parent, key = _pointer(doc, op["path"])
        value = copy.deepcopy(op["value"])
        if op["op"] == "add" and isinstance(parent, list):
            parent.insert(key, value)
        elif op["op"] in ("add", "replace"):
            if op["op"] == "replace" and (key >= len(parent) if isinstance(parent, list) else key not in parent):
                raise HarnessError(f"{source}: replace of missing {op['path']}")
            parent[key] = value
        else:
            raise HarnessError(f"{source}: JSON patch op {op['op']!r} is not supported by the test harness")


def render(component: Path, *, url: str, ca_bundle: bytes, name_prefix: str = "") -> list[dict]:
    """The webhook configurations of the kustomize component folder ``component`` (its
    manifests and patches), pointed at ``url`` (``https://127.0.0.1:PORT``)."""
    kustomization = yaml.safe_load((component / "kustomization.yaml").read_text())
    docs = []
    for resource in kustomization.get("resources", []):
        docs += [d for d in yaml.safe_load_all((component / resource).read_text())
                 if d and d.get("kind", "").endswith("WebhookConfiguration")]
    for patch in kustomization.get("patches", []):
        target = patch.get("target", {})
        ops = yaml.safe_load((component / patch["path"]).read_text())
        for doc in docs:
            name = doc["metadata"]["name"]
            if doc["kind"] == target.get("kind") and target.get("name", name) == name:
                apply_patch(doc, ops, component / patch["path"])
    bundle = base64.b64encode(ca_bundle).decode()
    for doc in docs:
        doc["metadata"] = {"name": name_prefix + doc["metadata"]["name"], "labels": {"mindzoo.test/harness": "trainer"}}
        for webhook in doc["webhooks"]:
            path = webhook["clientConfig"]["service"].get("path", "/")
            webhook["clientConfig"] = {"url": f"{url}{path}", "caBundle": bundle}
    if not docs:
        raise HarnessError(f"no webhook configurations in {component}")
    return docs


def name_prefix(overlay: Path) -> str:
    """The ``namePrefix`` of a kustomize overlay (how upstream names its deployed objects)."""
    return yaml.safe_load((overlay / "kustomization.yaml").read_text()).get("namePrefix", "")
