"""Kubeflow Pipelines' own Kubernetes objects for the real node (issue #21), rendered from the KFP
source's ``manifests/kustomize`` with kustomize (both from ``make kfp-backend``), never copied by
hand: namespaces' objects, ServiceAccounts, RBAC, ConfigMaps, Secrets, Services, CRDs and the
Deployments, which the harness may run as host processes instead.

KFP's Argo manifests are remote kustomize references
(``https://github.com/argoproj/argo-workflows/manifests/...?ref=v4.0.5``), which nothing here can
fetch; the Go module proxy's download of that Argo version holds the same ``manifests/`` folder,
so each reference is pointed at it, and a reference to any other version is refused. The images
KFP's objects name for the programs built here are renamed to the local builds
(``kfp-driver``, ``kfp-launcher``, ``argoexec``), in image fields and in the environment values
and arguments that carry them alike.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from procs import HarnessError

ARGO_MODULE = "github.com/argoproj/argo-workflows/v4"
ARGO_REMOTE = re.compile(r"https://github\.com/argoproj/argo-workflows/(?P<path>manifests/[^?\s]+)\?ref=(?P<ref>[^&\s]+)\S*")
NAMESPACE = "kubeflow"
#: The parts of KFP's manifests a single-user install is made of (upstream's env/platform-agnostic,
#: whose folder the backend source archive does not hold), cluster-scoped first.
PARTS = ("third-party/argo/installs/namespace/cluster-scoped", "base/pipeline/cluster-scoped",
         "base/installs/generic", "base/metadata/base", "third-party/argo/installs/namespace")
#: Upstream's image names of the programs images/kfp builds -> the key in kfpbuild.built_images().
UPSTREAM_IMAGES = {"ghcr.io/kubeflow/kfp-driver": "driver", "ghcr.io/kubeflow/kfp-launcher": "launcher",
                   "quay.io/argoproj/argoexec": "argoexec"}


def argo_manifests(version: str) -> Path:
    """The ``manifests/`` folder of Argo Workflows ``version`` in the Go module cache (downloaded
    through the module proxy when missing)."""
    proc = subprocess.run(["go", "mod", "download", "-json", f"{ARGO_MODULE}@{version}"], capture_output=True,
                          text=True, timeout=600)
    info = json.loads(proc.stdout or "{}")
    if proc.returncode != 0 or "Dir" not in info:
        raise HarnessError(f"downloading {ARGO_MODULE}@{version}: {info.get('Error') or proc.stderr.strip()}")
    return Path(info["Dir"]) / "manifests"


def localize_argo(tree: Path, argo: Path, version: str) -> int:
    """Point every remote Argo reference in the kustomizations under ``tree`` at ``argo``; returns how many."""
    count = 0
    for kustomization in tree.rglob("kustomization.yaml"):
        text = kustomization.read_text()

        def local(match: re.Match) -> str:
            nonlocal count
            if match["ref"] != version:
                raise HarnessError(f"{kustomization}: Argo {match['ref']} is referenced, but {version} is built")
            count += 1
            # kustomize takes a folder resource only by a relative path
            return os.path.relpath(argo.parent / match["path"], kustomization.parent)

        kustomization.write_text(ARGO_REMOTE.sub(local, text))
    return count


def resolve_vars(text: str) -> str:
    """Substitute the kustomize variables KFP's Argo patch uses, which upstream's platform overlays (not
    in the backend source archive) define: the namespace KFP is installed in, and pipeline-install-config's
    bucket. Any other ``$(kfp-...)`` left is an error (a KFP version with new ones)."""
    config = next(o for o in yaml.safe_load_all(text)
                  if o and o["kind"] == "ConfigMap" and o["metadata"]["name"] == "pipeline-install-config")
    for name, value in {"kfp-namespace": NAMESPACE, "kfp-artifact-bucket-name": config["data"]["bucketName"]}.items():
        text = text.replace(f"$({name})", value)
    left = sorted(set(re.findall(r"\$\((kfp-[\w-]+)\)", text)))
    if left:
        raise HarnessError(f"KFP's manifests use kustomize variables this harness does not define: {left}")
    return text


def render(workdir: Path, *, kustomize: Path, source: Path, argo_version: str, images: dict[str, str]) -> list[dict]:
    """Render KFP's manifests from ``source`` (a KFP source tree) into a list of objects, with the
    Argo references made local and upstream's images of the programs built here renamed to
    ``images`` ({driver|launcher|argoexec: local name})."""
    tree = workdir / "kustomize"
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(source / "manifests" / "kustomize", tree)
    if not localize_argo(tree, argo_manifests(argo_version), argo_version):
        raise HarnessError(f"no Argo reference in {source}/manifests/kustomize: not KFP's manifests?")
    overlay = tree / "mindzoo"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [f"../{part}" for part in PARTS]}))
    # The Argo folders are outside the kustomization's root: allowed explicitly.
    proc = subprocess.run([str(kustomize), "build", "--load-restrictor", "LoadRestrictionsNone", str(overlay)],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise HarnessError(f"kustomize build of KFP's manifests failed: {proc.stderr.strip()[-800:]}")
    text = resolve_vars(proc.stdout)
    for upstream, key in UPSTREAM_IMAGES.items():
        text = re.sub(rf"{re.escape(upstream)}(:[\w.-]+)?(@sha256:[0-9a-f]{{64}})?", images[key], text)
    return [obj for obj in yaml.safe_load_all(text) if obj]
