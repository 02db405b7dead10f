"""Kubeflow Trainer v2.3.0's API as the tests see it: its CRDs from the Go module cache (the source
`make tools` builds the controller from; never copied into the repository), and JSON schemas made from them
at test time for kubeconform. Only the standard library and PyYAML."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

TRAINER_MODULE = "github.com/kubeflow/trainer/v2@v2.3.0"


def crd_dir() -> Path:
    """The Trainer CRDs' folder; an AssertionError that says how to get it when the module is absent."""
    cache = os.environ.get("GOMODCACHE") or subprocess.run(
        ["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=False).stdout.strip() or str(
        Path.home() / "go" / "pkg" / "mod")
    folder = Path(cache) / TRAINER_MODULE / "manifests" / "base" / "crds"
    assert folder.is_dir(), f"Kubeflow Trainer's CRDs are not at {folder}: run `make tools` (it downloads the module)"
    return folder


def crds() -> list[dict[str, Any]]:
    import yaml

    return [yaml.safe_load(p.read_text()) for p in sorted(crd_dir().glob("trainer.kubeflow.org_*.yaml"))]


def json_schemas(target: Path) -> str:
    """Every Trainer kind's schema as ``<target>/<group>/<kind>_<version>.json``, strict as kubeconform's own
    (an object with declared properties takes no others); returns kubeconform's ``-schema-location`` for them."""
    for crd in crds():
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"].lower()
        (target / group).mkdir(parents=True, exist_ok=True)
        for version in crd["spec"]["versions"]:
            schema = _strict(version["schema"]["openAPIV3Schema"])
            (target / group / f"{kind}_{version['name']}.json").write_text(json.dumps(schema))
    return str(target) + "/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"


def _strict(node: Any) -> Any:
    """OpenAPI v3 (structural schema) to JSON schema: closed objects, int-or-string as either."""
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict(v) for k, v in node.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "string"}, {"type": "integer"}]
    if "properties" in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("additionalProperties", False)
    return out
