"""What ``scripts/build-kfp.sh`` built for the Kubeflow Pipelines backend tests (issue #21), as the
test harness finds it: the KFP source tree and binaries in the cache (``make kfp-backend``), the
Argo Workflows version KFP requires, and the in-pod images ``kfp-driver``, ``kfp-launcher`` and
``argoexec`` (``make kfp-images``), whose names the build publishes in
``<cache>/kfp-<version>/images.json``, their one source. :func:`import_all` imports those images
into the real node's containerd through :class:`nodeimages.NodeImages` (an image whose build is
already imported is not imported again).

The image names are what the backend is configured with: the API server's ``V2_DRIVER_IMAGE`` and
``V2_LAUNCHER_IMAGE``, the workflow controller's ``--executor-image``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from nodeimages import NodeImages
from procs import HarnessError, cache_bin

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "scripts" / "build-kfp.sh"
KEYS = ("driver", "launcher", "argoexec")


def kfp_version() -> str:
    """The KFP version scripts/build-kfp.sh builds (its ``KFP_VERSION=`` line)."""
    found = re.search(r"^KFP_VERSION=(\S+)$", BUILD_SCRIPT.read_text(), re.MULTILINE)
    if not found:
        raise HarnessError(f"{BUILD_SCRIPT} names no KFP_VERSION")
    return found.group(1)


def kfp_home() -> Path:
    """Where scripts/build-kfp.sh puts the KFP source, binaries and image names."""
    return cache_bin().parent / f"kfp-{kfp_version()}"


def kfp_source() -> Path:
    """The KFP source tree the binaries were built from (manifests included)."""
    src = kfp_home() / "src"
    if not (src / ".source-id").is_file():
        raise HarnessError(f"the KFP source is not unpacked ({src}): run `make kfp-backend`")
    return src


def binary(name: str) -> Path:
    """A program scripts/build-kfp.sh built: apiserver, persistence_agent, driver, launcher-v2, argoexec,
    workflow-controller, kustomize."""
    path = kfp_home() / "bin" / name
    if not path.is_file():
        raise HarnessError(f"{path} is not built: run `make kfp-backend`")
    return path


def argo_version() -> str:
    """The Argo Workflows version the binaries are (the one KFP's go.mod requires)."""
    try:
        return (kfp_home() / "bin" / ".argo-version").read_text().strip()
    except OSError:
        raise HarnessError("the KFP backend is not built: run `make kfp-backend`") from None


def built_images() -> dict[str, str]:
    """{driver|launcher|argoexec: image name} as the last ``make kfp-images`` built them."""
    manifest = kfp_home() / "images.json"
    try:
        names = json.loads(manifest.read_text())
    except (OSError, ValueError):
        raise HarnessError(f"the KFP backend images are not built ({manifest} missing): run `make kfp-images`") \
            from None
    if sorted(names) != sorted(KEYS):
        raise HarnessError(f"{manifest} names {sorted(names)}, not {list(KEYS)}: run `make kfp-images` again")
    return names


def import_all(images: NodeImages) -> dict[str, str]:
    """Import the three images into the node's containerd; return their names."""
    names = built_images()
    for name in names.values():
        images.ensure(name)
    return names
