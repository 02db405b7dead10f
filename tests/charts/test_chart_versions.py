"""The MLflow and MinIO the chart deploys are the versions the local stack tests against.

One version per server, written in several places: the chart's image tags (and
Chart.yaml annotations), the Dockerfiles that build those images, and the pins the
local stack runs (requirements/control.txt for MLflow, scripts/build-tools.sh for
the MinIO Go module). This test reads them all and requires them equal.
"""

from __future__ import annotations

import re

import pytest
import yaml

from chartkit import CHART, ROOT

pytestmark = [pytest.mark.control]


def chart_values() -> dict:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def dockerfile_args(name: str, arg: str) -> set[str]:
    """Every default of ``ARG arg=...`` in images/<name>/Dockerfile (each build stage repeats it)."""
    text = (ROOT / "images" / name / "Dockerfile").read_text()
    found = set(re.findall(rf"^ARG {arg}=(\S+)$", text, flags=re.M))
    assert found, f"images/{name}/Dockerfile has no ARG {arg}=..."
    return found


def test_mlflow_image_is_the_mlflow_the_local_stack_runs():
    lock = (ROOT / "requirements" / "control.txt").read_text()
    (pinned,) = re.findall(r"^mlflow==(\S+)$", lock, flags=re.M)
    import mlflow

    assert mlflow.__version__ == pinned, "the control environment does not hold its own lock's MLflow"
    assert chart_values()["mlflow"]["image"]["tag"] == pinned
    assert dockerfile_args("mlflow", "MLFLOW_VERSION") == {pinned}
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["annotations"]["mindzoo.dev/mlflow-version"] == pinned
    # The image resolves MLflow's dependencies under the same lock (pip constraints).
    assert "-c /tmp/constraints.txt" in (ROOT / "images" / "mlflow" / "Dockerfile").read_text()


def test_minio_image_is_the_minio_the_local_stack_runs():
    tools = (ROOT / "scripts" / "build-tools.sh").read_text()
    (pinned,) = re.findall(r'^\s*"minio github\.com/minio/minio@(\S+)"$', tools, flags=re.M)
    assert chart_values()["minio"]["image"]["tag"] == pinned
    assert dockerfile_args("minio", "MINIO_VERSION") == {pinned}
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["annotations"]["mindzoo.dev/minio-version"] == pinned
    # The binary the local stack starts was built from that same module version.
    from mindzoo import paths

    stamp = paths.tool("minio").parent / ".minio.version"
    assert stamp.exists(), f"{stamp} missing: run `make tools`"
    assert stamp.read_text().strip() == f"github.com/minio/minio@{pinned}"


def test_images_are_non_root_with_a_base_image_argument():
    for name in ("mlflow", "minio"):
        text = (ROOT / "images" / name / "Dockerfile").read_text()
        assert re.search(r"^ARG BASE_IMAGE=\S+", text, flags=re.M), name
        assert re.search(r"^USER 1000:1000$", text, flags=re.M), name
        assert "psycopg2" in text if name == "mlflow" else "go install" in text
