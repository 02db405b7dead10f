"""MLflow's run-comparison page, rendered by the real headless Chromium from the real MLflow server, shows
the runs the real steps logged (tests/runs/runkit.py) with their differing params and their metrics.

The screenshot is kept in test-artifacts/ (git-ignored; CI keeps it as an artifact).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from chromium import Chromium

pytestmark = [pytest.mark.control, pytest.mark.stack, pytest.mark.browser]

SCREENSHOT = Path(__file__).resolve().parents[2] / "test-artifacts" / "mlflow-compare-runs.png"
METRICS = ("eval/top1", "eval/top5", "eval/loss", "perf/img_per_s")  # the first rows of the page's metric grid

# The page's own controls, by their accessible names (MLflow 3.17.2): close the assistant side panel so the
# comparison gets the width, and show only the params that differ.
TIDY = """
const close = document.querySelector('[aria-label="Close"]');
if (close) close.click();
const diff = document.querySelector('[aria-label="Parameters - Show diff only"]');
if (diff && diff.getAttribute('aria-checked') !== 'true') diff.click();
return true;"""
# recipe.optim.momentum is the same in every run: "show diff only" hides it.
HIDES_EQUAL_PARAMS = """const text = document.body.innerText;
return text.includes('recipe.seed') && !text.includes('recipe.optim.momentum');"""
PLOT_DRAWN = "return document.querySelectorAll('.js-plotly-plot .main-svg').length > 0;"
# The metrics table is two virtualized grids (names | values); cells are placed by their top/left offsets.
METRIC_GRID = """
const metricsSwitch = document.querySelector('[aria-label="Metrics - Show diff only"]');
const box = metricsSwitch.closest('[class*="collapse-content-box"]');
const grids = box.querySelectorAll('[role=grid]');
const cells = g => [...g.querySelectorAll('[role=rowgroup] > div')].map(
    c => [parseFloat(c.style.top), parseFloat(c.style.left), c.innerText.trim()]);
return [cells(grids[0]), cells(grids[1])];"""


def ui_number(value: float) -> str:
    """How MLflow's UI prints a metric (``Utils.formatMetric`` in mlflow/server/js), from the value MLflow holds."""
    if value == 0:
        return "0"
    if abs(value) < 1e-3:
        mantissa, exponent = f"{value:.3e}".split("e")
        return f"{mantissa}e{int(exponent):+d}"
    digits = 3 if abs(value) < 10 else 2 if abs(value) < 100 else 1
    rounded = math.floor(value * 10 ** digits + 0.5) / 10 ** digits  # JavaScript's Math.round: half up
    return str(int(rounded)) if rounded == int(rounded) else repr(rounded)


def metric_table(browser: Chromium) -> dict[str, list[str]]:
    names, values = browser.run(METRIC_GRID)
    by_top = {top: name for top, _, name in names}
    table: dict[str, list[tuple[float, str]]] = {}
    for top, left, text in values:
        table.setdefault(by_top[top], []).append((left, text))
    return {name: [text for _, text in sorted(cells)] for name, cells in table.items()}


def row_of(text: str, label: str) -> list[str]:
    """The cells of the page row starting with ``label`` (innerText puts a tab between cells)."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("\t")]
        if cells[0] == label and len(cells) > 1:  # (a bare label is a plot's axis chip, not a table row)
            return [c for c in cells[1:] if c]
    raise AssertionError(f"no row {label!r} on the page:\n{text[:3000]}")


def test_the_mlflow_compare_page_shows_the_runs_their_differing_params_and_metrics(stack, compared):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(stack.mlflow_uri)
    experiment = client.get_experiment_by_name(compared.experiment)
    runs = [client.search_runs([experiment.experiment_id], f"attributes.run_name = '{compared.train_run_ids[v]}'")[0]
            for v in ("a", "b", "c")]
    ids = [r.info.run_id for r in runs]
    url = (f"{stack.mlflow_uri}/#/compare-runs?runs={json.dumps(ids)}"
           f"&experiments={json.dumps([experiment.experiment_id])}")
    with Chromium() as browser:
        browser.open(url)
        browser.wait_for_text("Comparing 3 Runs", *(r.info.run_name for r in runs), *METRICS)
        browser.run(TIDY)
        browser.wait_until(PLOT_DRAWN, "the parallel-coordinates plot")
        browser.wait_until(HIDES_EQUAL_PARAMS, "the params table showing only what differs")
        text = browser.text()
        columns = [next(r for r in runs if r.info.run_id == shown) for shown in row_of(text, "Run ID:")]
        assert sorted(r.info.run_id for r in columns) == sorted(ids)
        for param in ("recipe.seed", "lr", "recipe.schedule.base_lr"):
            assert row_of(text, param) == [r.data.params[param] for r in columns], param
        table = metric_table(browser)
        for metric in METRICS:
            assert table[metric] == [ui_number(r.data.metrics[metric]) for r in columns], metric
        browser.screenshot(SCREENSHOT)
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
