"""A comparison of runs — the params that differ, the key metrics, the best run — rendered as a
terminal table, Markdown, CSV or JSON.

Table and Markdown put one run per column (as MLflow's compare page does: many params, few
runs); CSV and JSON hold one record per run, ready for a spreadsheet or ``pandas``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from mindzoo.runs.layout import BEST_METRIC, KEY_METRICS, Metric, Param
from mindzoo.runs.query import RunRow

# Params that differ between any two runs by construction (they contain the run id).
IGNORED_PARAMS = frozenset({"run_id", "output"})
# The layout's run-level params first, then the recipe, then the rest (each alphabetical).
CORE_PARAMS = (Param.MODEL, Param.ENGINE, Param.DEVICE, Param.WORLD_SIZE, Param.BATCH_SIZE, Param.LR, Param.EPOCHS,
               Param.DATASET_HASH)
MAX_CELL = 40
OVERRIDES = "overrides"  # train's --set, as k=v;k=v


@dataclass(frozen=True)
class Comparison:
    experiment: str
    runs: list[RunRow]
    params: list[str]  # the params whose values differ
    metrics: list[str]  # the key metrics at least one run has
    best: str | None  # run id of the best run by BEST_METRIC


def compare_rows(experiment: str, rows: list[RunRow]) -> Comparison:
    return Comparison(experiment, rows, differing_params(rows), [m for m in KEY_METRICS if any(m in r.metrics
                                                                                             for r in rows)],
                      best_run(rows))


def differing_params(rows: list[RunRow]) -> list[str]:
    """Params with two values among the runs that log them, or logged by only some runs of one step
    (runs of different steps log different params by design: that is no difference)."""
    keys = {k for row in rows for k in row.params} - IGNORED_PARAMS
    steps = {row.step for row in rows}

    def differs(key: str) -> bool:
        if len({row.params[key] for row in rows if key in row.params}) > 1:
            return True
        return any(len({key in row.params for row in rows if row.step == step}) > 1 for step in steps)

    return sorted(filter(differs, keys), key=lambda k: (0, CORE_PARAMS.index(k), k) if k in CORE_PARAMS
                  else (1 if k.startswith(Param.RECIPE_PREFIX) else 2, 0, k))


def best_run(rows: list[RunRow]) -> str | None:
    """Highest ``eval/top1``; a tie goes to the lower ``eval/loss``, then to the earlier run."""
    scored = [r for r in rows if _finite(r.metrics.get(BEST_METRIC))]
    if not scored:
        return None
    loss = Metric.EVAL_LOSS
    return min(scored, key=lambda r: (-r.metrics[BEST_METRIC],
                                      r.metrics[loss] if _finite(r.metrics.get(loss)) else math.inf,
                                      r.start_time)).run_id


def _finite(value: Any) -> bool:
    return isinstance(value, float) and math.isfinite(value)


def render(comparison: Comparison, fmt: str) -> str:
    return {"table": _text, "markdown": _markdown, "csv": _csv, "json": _json}[fmt](comparison)


# -- one run per column -----------------------------------------------------------------------------------------
def _grid(c: Comparison) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the transposed table; section rows hold a title and empty cells."""
    header = ["run"] + [f"{r.name} *" if r.run_id == c.best else r.name for r in c.runs]
    blank = [""] * len(c.runs)
    lines = [["run id", *(r.run_id for r in c.runs)], ["step", *(r.step or "-" for r in c.runs)],
             ["status", *(r.status for r in c.runs)], ["started (UTC)", *(_time(r.start_time) for r in c.runs)]]
    if any(r.pipeline_run_id for r in c.runs):
        lines.append(["pipeline run", *(r.pipeline_run_id or "-" for r in c.runs)])
    lines.append(["params that differ" if c.params else "params: all equal", *blank])
    lines += [[f"  {k}", *_param_cells(k, c.runs)] for k in c.params]
    lines.append(["metrics" if c.metrics else "metrics: none of the key metrics", *blank])
    lines += [[f"  {m}", *(_metric_cell(r, m) for r in c.runs)] for m in c.metrics]
    return header, lines


def _text(c: Comparison) -> str:
    header, lines = _grid(c)
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [f"experiment {c.experiment}: {len(c.runs)} runs", fmt.format(*header),
           "  ".join("-" * w for w in widths), *(fmt.format(*row).rstrip() for row in lines)]
    return "\n".join(out) + "\n" + _footer(c) + "\n"


def _markdown(c: Comparison) -> str:
    header, lines = _grid(c)
    escape = lambda text: text.replace("|", "\\|")  # noqa: E731
    rows = [f"| {' | '.join(escape(x) for x in header)} |", "|" + "---|" * len(header)]
    rows += [f"| {' | '.join(escape(x.strip()) if i else _md_key(x) for i, x in enumerate(row))} |" for row in lines]
    footer = _footer(c).replace("* best", "\\* best")  # not a list item
    return f"### Experiment `{c.experiment}`\n\n" + "\n".join(rows) + "\n\n" + footer.replace("\n", "  \n") + "\n"


def _md_key(key: str) -> str:
    return f"`{key.strip()}`" if key.startswith("  ") else f"**{key}**"


def _footer(c: Comparison) -> str:
    if c.best is None:
        line = f"best: none (no run has {BEST_METRIC})"
    else:
        best = next(r for r in c.runs if r.run_id == c.best)
        line = f"* best by {BEST_METRIC}: {best.name} ({best.run_id}) {best.metrics[BEST_METRIC]:.4f}"
    if any(set(c.metrics) & r.from_siblings for r in c.runs):
        line += "\n† logged by another step of the same pipeline run"
    return line


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if ms else "-"


def _param_cells(key: str, runs: list[RunRow]) -> list[str]:
    if key != OVERRIDES:
        return [_cell(r.params.get(key)) for r in runs]
    # `k=v;k=v` lists: show only the items that are not the same in every run.
    items = [set(r.params[key].split(";")) if key in r.params else None for r in runs]
    common = set.intersection(*(i for i in items if i is not None))
    return ["-" if i is None else _cell(";".join(sorted(i - common)) or "(the common ones)") for i in items]


def _cell(value: Any) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= MAX_CELL else text[:MAX_CELL - 1] + "…"


def _metric_cell(row: RunRow, key: str) -> str:
    value = row.metrics.get(key)
    if value is None:
        return "-"
    # A value taken from a sibling step's run (same pipeline run) is marked, so nobody mistakes its origin.
    return f"{value:.4g}" + (" †" if key in row.from_siblings else "")


# -- one record per run -------------------------------------------------------------------------------------------
def _records(c: Comparison) -> list[dict[str, Any]]:
    return [{"run_id": r.run_id, "name": r.name, "step": r.step, "status": r.status, "best": r.run_id == c.best,
             "start_time": _time(r.start_time), "pipeline_run_id": r.pipeline_run_id,
             "params": {k: r.params.get(k) for k in c.params},
             "metrics": {m: _number(r.metrics.get(m)) for m in c.metrics}} for r in c.runs]


def _number(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None  # JSON has no NaN


def _csv(c: Comparison) -> str:
    buffer = io.StringIO()
    fields = ["run_id", "name", "step", "status", "best", "start_time", "pipeline_run_id", *c.params, *c.metrics]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for record in _records(c):
        flat = {k: v for k, v in record.items() if k not in ("params", "metrics")}
        writer.writerow({**flat, **record["params"], **record["metrics"]})
    return buffer.getvalue()


def _json(c: Comparison) -> str:
    body = {"experiment": c.experiment, "best_by": BEST_METRIC, "best_run_id": c.best, "params": c.params,
            "metrics": c.metrics, "runs": _records(c)}
    return json.dumps(body, indent=2) + "\n"
