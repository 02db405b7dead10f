"""The images charts/mindzoo runs in its default mode, built locally for the real node
(no registry is reachable) and imported into its containerd under the names the chart
renders by default:

* **MLflow** from ``images/mlflow/Dockerfile`` on the project's local base, with an
  offline wheelhouse pinned by ``requirements/control.txt``;
* **MinIO** from ``images/minio/Dockerfile``, its Go build stage run on the local base
  with this machine's Go toolchain and module and build caches mounted (the modules
  ``scripts/build-tools.sh`` already fetched for the local stack; only look-ups reach the
  Go module proxy);
* **PostgreSQL**: the chart's default is the official image, which no registry here
  serves, so a stand-in built from Debian's postgresql (``images/postgres``, beside
  this file) that keeps the parts of the official image's contract the chart relies
  on is imported under the official name. Tests that use it say so.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import yaml

from procs import HarnessError, Tools, cache_bin, run

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "mindzoo"
BASE = "localhost/mindzoo-base:bookworm"
STAND_IN_POSTGRES = Path(__file__).resolve().parent / "images" / "postgres"
#: The host's CA bundle, for RUN steps that reach a package registry (TLS may be re-signed by a local CA).
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def default_image(component: str) -> str:
    """The image reference the chart renders for ``component`` with default values, as containerd names
    it (a reference without a registry is Docker Hub's)."""
    image = yaml.safe_load((CHART / "values.yaml").read_text())[component]["image"]
    repository = f"{image['registry']}/{image['repository']}" if image.get("registry") else image["repository"]
    if "." not in repository.split("/")[0] and repository.split("/")[0] != "localhost":
        repository = f"docker.io/{repository}"
    return f"{repository}:{image['tag']}"


def _build(tools: Tools, what: str, argv: list[str]) -> None:
    from nodeimages import podman_env

    proc = subprocess.run([str(tools.podman), "build", "-q", *argv], capture_output=True, text=True, cwd=ROOT,
                          env=podman_env(), timeout=1800)
    if proc.returncode != 0:
        raise HarnessError(f"building {what} failed: {(proc.stderr or proc.stdout).strip().splitlines()[-3:]}")


def _wheelhouse() -> Path:
    """MLflow's wheels for the image (the versions requirements/control.txt pins), downloaded again when the
    pins or the list of what the image installs change."""
    pins = (ROOT / "requirements" / "control.txt").read_text()
    wheels = cache_bin().parent / "wheels" / "mlflow-image"
    stamp = wheels / ".lock"
    mlflow = next(line.split("==")[1] for line in pins.splitlines() if line.startswith("mlflow=="))
    wanted = [f"mlflow[auth]=={mlflow}", "boto3", "minio", "psycopg2-binary==2.9.13", "setuptools", "wheel"]
    want = hashlib.sha256((pins + " ".join(wanted)).encode()).hexdigest()[:16]
    if stamp.is_file() and stamp.read_text() == want:
        return wheels
    wheels.mkdir(parents=True, exist_ok=True)
    run([ROOT / ".venv-control" / "bin" / "python", "-m", "pip", "download", "-q", "--only-binary=:all:",
         "-d", wheels, "-c", ROOT / "requirements" / "control.txt", *wanted], "downloading MLflow's wheelhouse",
        timeout=1200)
    stamp.write_text(want)
    return wheels


def build_all(tools: Tools) -> dict[str, str]:
    """Build the three images; return {component: image name} (podman's layer cache makes a rebuild quick)."""
    names = {c: default_image(c) for c in ("mlflow", "minio", "postgresql")}
    _build(tools, "the MLflow image", ["-f", "images/mlflow/Dockerfile", "-t", names["mlflow"],
                                       "--build-arg", f"BASE_IMAGE={BASE}", "-v", f"{_wheelhouse()}:/wheels:ro", "."])
    go = lambda *args: subprocess.run(["go", "env", *args], capture_output=True, text=True).stdout.split()  # noqa: E731
    goroot, modcache, gocache = go("GOROOT", "GOMODCACHE", "GOCACHE")
    _build(tools, "the MinIO image", [
        "-f", "images/minio/Dockerfile", "-t", names["minio"], "--build-arg", f"GO_IMAGE={BASE}",
        "--build-arg", f"BASE_IMAGE={BASE}", "-v", f"{CA_BUNDLE}:{CA_BUNDLE}:ro", "-v", f"{goroot}:/usr/local/go:ro", "-v", f"{modcache}:/go/pkg/mod:ro", "-v", f"{gocache}:/root/.cache/go-build",
        "."])
    _build(tools, "the PostgreSQL stand-in image", ["-t", names["postgresql"], "--build-arg", f"BASE_IMAGE={BASE}",
                                                    "-v", f"{CA_BUNDLE}:{CA_BUNDLE}:ro",
                                                    str(STAND_IN_POSTGRES)])
    return names
