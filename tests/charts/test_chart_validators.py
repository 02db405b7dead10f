"""charts/mindzoo checked by validators nobody here wrote, on every rendered combination (the defaults and
each ci/*-values.yaml): kubeconform against the Kubernetes JSON schemas of the API server the cluster
tests run (bundled in the `kubernetes-validate` package, used offline), and kube-score with no CRITICAL
finding except the checks the chart documents a reason for (`mindzoo.kubeScoreIgnore` in _helpers.tpl).
`helm lint --strict` runs in test_chart_render.py."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from chartkit import CHART, CI_VALUES, helm_path

pytestmark = [pytest.mark.control]

COMBOS = [None, *[p.name for p in CI_VALUES]]
KUBERNETES_VERSION = "1.36.0"  # the API server the cluster tests run (tools/hyperkube/go.mod)
CRITICAL = 1  # kube-score's grade for a CRITICAL finding


def tool(name: str) -> Path:
    path = helm_path().parent / name
    if not path.exists():
        pytest.fail(f"{name} is not built at {path}: run `make tools` (scripts/build-tools.sh)", pytrace=False)
    return path


@pytest.fixture(scope="module")
def schemas(tmp_path_factory) -> Path:
    """kubernetes-validate's strict schemas in the layout kubeconform reads (`<version>-standalone-strict/
    <kind>-<group>-<version>.json`), their `$ref`s made relative (and their `https://kubernetes.io/...`
    `$id`s dropped) so they resolve to the files beside them, offline."""
    import kubernetes_validate

    source = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{KUBERNETES_VERSION}-local-strict"
    target = tmp_path_factory.mktemp("schemas") / f"v{KUBERNETES_VERSION}-standalone-strict"
    target.mkdir()
    for schema in source.glob("*.json"):
        document = json.loads(schema.read_text())
        document.pop("$id", None)
        (target / schema.name).write_text(
            json.dumps(document).replace('"/api/_definitions.json#', '"_definitions.json#'))
    return target.parent


@pytest.fixture(scope="module")
def rendered(chart, tmp_path_factory):
    folder = tmp_path_factory.mktemp("rendered")

    def render(combo: str | None) -> Path:
        path = folder / f"{combo or 'defaults'}.yaml"
        if not path.exists():
            args = ["template", "rel", str(CHART), "-n", "ns"] + (["-f", str(CHART / "ci" / combo)] if combo else [])
            path.write_text(chart.helm(*args).stdout)
        return path
    return render


@pytest.mark.parametrize("combo", COMBOS)
def test_kubeconform_accepts_every_rendered_object(rendered, schemas, combo):
    location = str(schemas) + "/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/" \
                              "{{ .ResourceKind }}{{ .KindSuffix }}.json"
    proc = subprocess.run([str(tool("kubeconform")), "-strict", "-summary", "-output", "json",
                           "-kubernetes-version", KUBERNETES_VERSION, "-schema-location", location,
                           str(rendered(combo))], capture_output=True, text=True, timeout=120)
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, json.dumps(report.get("resources"), indent=1)[:4000]
    summary = report["summary"]
    assert summary["valid"] >= 10 and summary["invalid"] == summary["errors"] == summary["skipped"] == 0, summary


def _documented_ignores() -> tuple[set[str], set[str]]:
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    annotated = set(re.search(r"kube-score/ignore: (\S+)", helpers).group(1).split(","))
    block = helpers[helpers.index("kube-score (run on"):helpers.index('define "mindzoo.kubeScoreIgnore"')]
    explained = set(re.findall(r"^- ([a-z-]+): \S", block, flags=re.M))
    return annotated, explained


def test_every_kube_score_check_the_chart_ignores_has_its_reason_written_down():
    annotated, explained = _documented_ignores()
    assert annotated and annotated == explained


@pytest.mark.parametrize("combo", COMBOS)
def test_kube_score_finds_nothing_critical(rendered, combo):
    proc = subprocess.run([str(tool("kube-score")), "score", "--output-format", "json", str(rendered(combo))],
                          capture_output=True, text=True, timeout=120)
    objects = json.loads(proc.stdout)
    critical = [f"{o['object_name']} ({o['type_meta']['kind']}): {c['check']['id']}: "
                f"{'; '.join(x.get('summary', '') for x in c.get('comments') or [])}"
                for o in objects for c in o["checks"] if c["grade"] == CRITICAL and not c["skipped"]]
    assert len(objects) >= 5 and critical == [], "\n".join(critical)
    workloads = [o for o in objects if o["type_meta"]["kind"] in ("Deployment", "StatefulSet", "Job", "Pod")]
    assert all("kube-score/ignore" in (o.get("object_meta", {}).get("annotations") or {}) for o in workloads)
