"""PNG plots drawn with Pillow (already a runtime dependency; no matplotlib in the image).

Two kinds are enough for training and evaluation reports: line charts (training
curves) and a confusion-matrix heat map.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["confusion_matrix", "line_chart"]

_COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]
_W, _H, _M = 720, 420, 60  # image size and margin


def _canvas(width: int, height: int):  # noqa: ANN202 - PIL types stay lazy
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), "white")
    return image, ImageDraw.Draw(image)


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        high = low + 1.0
    step = 10 ** math.floor(math.log10((high - low) / count))
    for mult in (1, 2, 5, 10):
        if (high - low) / (step * mult) <= count:
            step *= mult
            break
    start = math.ceil(low / step) * step
    return [start + i * step for i in range(int((high - start) / step) + 1)]


def line_chart(series: dict[str, tuple[Sequence[float], Sequence[float]]], path: Path, *, title: str,
               xlabel: str, ylabel: str = "") -> Path:
    """One PNG with a line per series ``{name: (xs, ys)}``; non-finite points are skipped."""
    image, draw = _canvas(_W, _H)
    points = [(x, y) for xs, ys in series.values() for x, y in zip(xs, ys) if math.isfinite(y)]
    if not points:
        points = [(0.0, 0.0), (1.0, 1.0)]
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1e-9 + abs(y0) * 0.1 + 1e-3)

    def at(x: float, y: float) -> tuple[float, float]:
        return (_M + (x - x0) / (x1 - x0) * (_W - 2 * _M), _H - _M - (y - y0) / (y1 - y0) * (_H - 2 * _M))

    draw.rectangle([_M, _M, _W - _M, _H - _M], outline="black")
    for tick in _ticks(y0, y1):
        if y0 <= tick <= y1:
            _, py = at(x0, tick)
            draw.line([_M - 4, py, _M, py], fill="black")
            draw.text((4, py - 6), f"{tick:.3g}", fill="black")
    for tick in _ticks(x0, x1):
        if x0 <= tick <= x1:
            px, _ = at(tick, y0)
            draw.line([px, _H - _M, px, _H - _M + 4], fill="black")
            draw.text((px - 10, _H - _M + 8), f"{tick:g}", fill="black")
    for i, (name, (xs, ys)) in enumerate(series.items()):
        color = _COLORS[i % len(_COLORS)]
        line = [at(x, y) for x, y in zip(xs, ys) if math.isfinite(y)]
        if len(line) > 1:
            draw.line(line, fill=color, width=2)
        elif line:
            draw.ellipse([line[0][0] - 2, line[0][1] - 2, line[0][0] + 2, line[0][1] + 2], fill=color)
        draw.text((_W - _M - 150, _M + 6 + 14 * i), name, fill=color)
    draw.text((_M, 20), title, fill="black")
    draw.text((_W // 2 - 20, _H - 24), xlabel, fill="black")
    if ylabel:
        draw.text((4, _M - 20), ylabel, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def confusion_matrix(matrix: np.ndarray, classes: Sequence[str], path: Path, title: str) -> Path:
    """Heat map of a confusion matrix (rows: true class, columns: predicted), counts in the cells."""
    n = len(classes)
    cell = max(6, min(48, 640 // max(n, 1)))
    left, top = 110, 60
    image, draw = _canvas(left + cell * n + 20, top + cell * n + 40)
    totals = np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    share = matrix / totals
    for i in range(n):
        for j in range(n):
            shade = int(255 * (1 - share[i, j]))
            box = [left + j * cell, top + i * cell, left + (j + 1) * cell, top + (i + 1) * cell]
            draw.rectangle(box, fill=(shade, shade, 255), outline=(220, 220, 220))
            if cell >= 24 and matrix[i, j]:
                draw.text((box[0] + 3, box[1] + cell // 2 - 6), str(int(matrix[i, j])),
                          fill="white" if share[i, j] > 0.5 else "black")
        if cell >= 10:
            draw.text((4, top + i * cell + cell // 2 - 6), str(classes[i])[:16], fill="black")
    draw.text((left, 10), title, fill="black")
    draw.text((left, 30), "columns: predicted, rows: true", fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path
