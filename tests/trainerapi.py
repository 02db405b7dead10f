"""Kubeflow Trainer's and JobSet's APIs as the tests see them: their sources in the Go module cache (the very
versions `make tools` builds the controllers from; never copied into the repository), their CRDs created on a
test cluster and removed again, and JSON schemas made from them at test time for kubeconform. Only the
standard library and PyYAML at import (the kubernetes client where CRDs are applied)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TRAINER_MODULE = "github.com/kubeflow/trainer/v2"
JOBSET_MODULE = "sigs.k8s.io/jobset"


class ModuleMissing(RuntimeError):
    """A module's source is neither in the Go module cache nor downloadable."""


def pinned(module: str) -> str:
    """The version of ``module`` the tools are built at: scripts/build-tools.sh's TOOLS line (Trainer) or the
    tools/<name>/go.mod of its wrapper (JobSet). One pin, read where it is written."""
    if module == TRAINER_MODULE:
        text, pattern = (ROOT / "scripts" / "build-tools.sh").read_text(), rf"{re.escape(module)}/\S*@(v[^\s\"]+)"
    else:
        text, pattern = (ROOT / "tools" / module.rsplit("/", 1)[1] / "go.mod").read_text(), \
            rf"^\s*{re.escape(module)} (v\S+)"
    found = re.search(pattern, text, re.MULTILINE)
    if not found:
        raise ModuleMissing(f"no pinned version of {module} in scripts/build-tools.sh or tools/*/go.mod")
    return found.group(1)


def module_dir(module: str, version: str | None = None) -> Path:
    """``module``'s source (at ``version``, default :func:`pinned`) in the Go module cache; downloaded
    (`go mod download`) if absent."""
    version = version or pinned(module)
    try:
        cache = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ModuleMissing(f"cannot locate the Go module cache (`go env GOMODCACHE`): {exc}") from None
    folder = Path(cache) / f"{module}@{version}"
    if folder.is_dir():
        return folder
    proc = subprocess.run(["go", "mod", "download", "-json", f"{module}@{version}"], capture_output=True, text=True,
                          cwd="/", timeout=600)
    try:
        return Path(json.loads(proc.stdout)["Dir"])
    except (ValueError, KeyError):
        why = (proc.stderr or proc.stdout).strip()[-400:]
        raise ModuleMissing(f"cannot download {module}@{version}: {why}") from None


def crd_files(trainer_src: Path | None = None, jobset_src: Path | None = None) -> list[Path]:
    """Trainer's CRD files, and JobSet's first when ``jobset_src`` is given (Trainer's controller needs them)."""
    trainer_src = trainer_src or module_dir(TRAINER_MODULE)
    jobset = sorted((jobset_src / "config/components/crd/bases").glob("*.yaml")) if jobset_src else []
    return [*jobset, *sorted((trainer_src / "manifests/base/crds").glob("trainer.kubeflow.org_*.yaml"))]


def apply_crds(api: Any, files: list[Path], timeout: float = 60) -> list[str]:
    """Create the CRDs of ``files`` where absent and wait until all are Established; the names this created
    (the others were there already, and are not this caller's to remove)."""
    import yaml
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    ext, names, created = client.ApiextensionsV1Api(api), [], []
    for path in files:
        crd = yaml.safe_load(path.read_text())
        names.append(crd["metadata"]["name"])
        try:
            ext.create_custom_resource_definition(crd)
            created.append(crd["metadata"]["name"])
        except ApiException as exc:
            if exc.status != 409:
                raise RuntimeError(f"cannot create CRD {path.name}: {exc.status} {exc.reason}: {exc.body}") from None
    deadline = time.monotonic() + timeout
    for name in names:
        while not any(c.type == "Established" and c.status == "True"
                      for c in ext.read_custom_resource_definition(name).status.conditions or []):
            if time.monotonic() > deadline:
                raise RuntimeError(f"CRD {name} not Established in {timeout:.0f}s")
            time.sleep(0.3)
    return created


def remove_crds(api: Any, names: list[str], timeout: float = 120) -> list[str]:
    """Delete the CRDs ``names`` and wait until they are gone; what could not be undone."""
    from kubernetes import client

    ext, problems = client.ApiextensionsV1Api(api), []
    for name in names:
        try:
            ext.delete_custom_resource_definition(name)
        except client.ApiException as exc:
            if exc.status != 404:
                problems.append(f"cannot delete CRD {name}: {exc.status} {exc.reason}")
    deadline = time.monotonic() + timeout
    while left := [c.metadata.name for c in ext.list_custom_resource_definition().items if c.metadata.name in names]:
        if time.monotonic() > deadline:
            problems.append(f"CRDs still there after {timeout:.0f} s: {', '.join(left)}")
            break
        time.sleep(0.5)
    return problems


def crds() -> list[dict[str, Any]]:
    import yaml

    return [yaml.safe_load(p.read_text()) for p in crd_files()]


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
