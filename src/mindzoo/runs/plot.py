"""Overlaid curves of the compared runs: one panel per curve metric, one line per run, the best run bold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mindzoo.errors import MindzooError
from mindzoo.runs.layout import CURVES, Metric
from mindzoo.runs.query import RunRow, metric_history

# Per-step metrics are plotted against the global step; per-epoch ones against the epoch.
PER_STEP = frozenset({Metric.TRAIN_LOSS, Metric.TRAIN_LR})


def plot_curves(client: Any, rows: list[RunRow], best: str | None, path: Path, title: str) -> list[str]:
    """Write the figure to ``path``; return the metrics plotted. Needs matplotlib (control environment)."""
    import matplotlib

    matplotlib.use("Agg")  # no display in a pod or a CI job
    import matplotlib.pyplot as plt

    curves = {key: {r.run_id: metric_history(client, r.run_id, key) for r in rows} for key in CURVES}
    panels = [key for key in CURVES if any(curves[key].values())]
    if not panels:
        raise MindzooError(f"none of the runs logged a curve ({', '.join(CURVES)}): nothing to plot")
    cols = min(2, len(panels))
    nrows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(6.5 * cols, 4 * nrows), squeeze=False)
    for ax, key in zip(axes.flat, panels):
        _panel(ax, key, rows, curves[key], best)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    except OSError as err:
        raise MindzooError(f"cannot write the plot to {path}: {err.strerror or err}") from None
    finally:
        plt.close(fig)
    return panels


def _panel(ax: Any, key: str, rows: list[RunRow], series: dict[str, list[tuple[int, float]]], best: str | None) -> None:
    from matplotlib.ticker import MaxNLocator

    for row in rows:
        points = series[row.run_id]
        if not points:
            continue
        steps, values = zip(*points)
        bold = row.run_id == best
        ax.plot(steps, values, label=f"{row.name}{' (best)' if bold else ''}", linewidth=2.4 if bold else 1.2,
                alpha=1.0 if bold else 0.8, marker="" if key in PER_STEP or len(points) > 30 else "o", markersize=3)
    ax.set_title(key)
    ax.set_xlabel("step" if key in PER_STEP else "epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if key == Metric.TRAIN_LR:
        ax.set_yscale("log")  # step schedules span decades
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
