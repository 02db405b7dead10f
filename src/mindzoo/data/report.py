"""The data report: counts, class balance, quarantined images (with reasons), skipped junk, image sizes.

One dict (``report.json``) rendered twice for people: Markdown (the KFP
``Markdown`` artifact and MLflow) and a standalone HTML page.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path
from typing import Any

from mindzoo.data.convert import Conversion

MD_CLASS_ROWS = 10  # Markdown lists the smallest and largest classes; JSON and HTML list all
MD_SKIPPED_ROWS = 50


def build(info: dict[str, Any], conversion: Conversion, max_bad_fraction: float,
          skipped: tuple[str, ...] = ()) -> dict[str, Any]:
    bad = conversion.bad
    total = conversion.rows + len(bad)
    splits = {}
    for split, body in info["splits"].items():
        shards = [s for s in conversion.shards if s.split == split]
        splits[split] = {
            "images": body["images"], "quarantined": body["quarantined"], "per_class": body["per_class"],
            "imbalance": imbalance(body["per_class"]), "image_size": size_stats(shards),
            "modes": dict(sum((s.modes for s in shards), Counter())),
            "formats": dict(sum((s.formats for s in shards), Counter())),
            "resized": sum(s.resized for s in shards),
            "channels": body.get("image_size", {}).get("channels", []),
        }
    return {
        "dataset": info["name"], "content_hash": info["content_hash"], "source": info["source"],
        "source_format": info["source_format"], "num_classes": info["num_classes"], "splits": splits,
        "quarantined": [{"split": sp, "file": f, "label": lb, "reason": r} for sp, f, lb, r in bad],
        "skipped": list(skipped),  # operating-system junk (.DS_Store, Thumbs.db, ._*, hidden folders)
        "bad_fraction": len(bad) / total if total else 0.0, "max_bad_fraction": max_bad_fraction,
        "conversion": {"images": total, "seconds": round(conversion.seconds, 3), "workers": conversion.workers,
                       "images_per_second": round(total / conversion.seconds, 1) if conversion.seconds else None},
    }


def imbalance(per_class: dict[str, int]) -> dict[str, Any]:
    import numpy as np

    counts = np.array(list(per_class.values()), dtype=float)
    if not counts.size:
        return {}
    lo, hi = int(np.argmin(counts)), int(np.argmax(counts))
    names = list(per_class)
    return {
        "min_class": names[lo], "min": int(counts[lo]), "max_class": names[hi], "max": int(counts[hi]),
        "max_over_min": round(float(counts[hi] / counts[lo]), 3) if counts[lo] else None,
        "cv": round(float(counts.std() / counts.mean()), 4) if counts.mean() else None,
        "empty_classes": [n for n, c in per_class.items() if c == 0],
    }


def size_stats(shards: list[Any]) -> dict[str, dict[str, float]]:
    import numpy as np

    out = {}
    for name, attr in (("width", "widths"), ("height", "heights"), ("bytes", "sizes")):
        values = np.concatenate([np.asarray(getattr(s, attr), dtype=float) for s in shards] or [np.zeros(0)])
        if values.size:
            out[name] = {"min": float(values.min()), "p50": float(np.median(values)),
                         "mean": round(float(values.mean()), 1), "max": float(values.max())}
    return out


def write(report: dict[str, Any], folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "report.json", "md": folder / "report.md", "html": folder / "report.html"}
    paths["json"].write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    paths["md"].write_text(to_markdown(report))
    paths["html"].write_text(to_html(report))
    return paths


def _overview(report: dict[str, Any]) -> list[tuple[str, str]]:
    conv = report["conversion"]
    rate = f"{conv['images_per_second']:,.0f} images/s" if conv["images_per_second"] else "-"
    return [("Dataset", report["dataset"]), ("Source", f"{report['source']} ({report['source_format']})"),
            ("Content hash", report["content_hash"]), ("Classes", str(report["num_classes"])),
            ("Quarantined", f"{len(report['quarantined'])} ({report['bad_fraction']:.3%}; "
                            f"limit {report['max_bad_fraction']:.3%})"),
            ("Skipped (system junk)", str(len(report.get("skipped", [])))),
            ("Conversion", f"{conv['images']:,} images in {conv['seconds']:.1f} s ({rate}, {conv['workers']} workers)")]


def _split_rows(body: dict[str, Any]) -> list[tuple[str, str]]:
    imb, size = body["imbalance"], body["image_size"]
    rows = [("Images", f"{body['images']:,}"), ("Quarantined", str(body["quarantined"]))]
    if imb:
        ratio = f"{imb['max_over_min']:.2f}" if imb["max_over_min"] else "n/a (empty class)"
        rows += [("Smallest class", f"{imb['min_class']} ({imb['min']})"),
                 ("Largest class", f"{imb['max_class']} ({imb['max']})"),
                 ("Imbalance (max/min, CV)", f"{ratio}, {imb['cv']}"),
                 ("Classes without images", ", ".join(imb["empty_classes"][:20]) or "none")]
    for name in ("width", "height", "bytes"):
        if name in size:
            s = size[name]
            rows.append((f"Stored {name} (min / median / mean / max)",
                         f"{s['min']:.0f} / {s['p50']:.0f} / {s['mean']:.0f} / {s['max']:.0f}"))
    rows += [("Colour modes", _counts(body["modes"])),
             ("Channels", ", ".join(map(str, body.get("channels", []))) or "-"), ("Formats", _counts(body["formats"])),
             ("Re-encoded for store_size", str(body["resized"]))]
    return rows


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(counter.items(), key=lambda kv: -kv[1])) or "-"


def _md_table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    clean = [tuple(str(c).replace("|", "\\|") for c in row) for row in rows]
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in clean)]


def to_markdown(report: dict[str, Any]) -> str:
    lines = [f"# Data report: {report['dataset']}", "", *_md_table(("Item", "Value"), _overview(report))]
    for split, body in report["splits"].items():
        lines += ["", f"## {split}", "", *_md_table(("Item", "Value"), _split_rows(body)), ""]
        classes = sorted(body["per_class"].items(), key=lambda kv: (kv[1], kv[0]))
        if len(classes) > 2 * MD_CLASS_ROWS:
            classes = classes[:MD_CLASS_ROWS] + [("…", "…")] + classes[-MD_CLASS_ROWS:]
        lines += _md_table(("Class", "Images"), classes)
    lines += ["", "## Quarantined images", ""]
    if report["quarantined"]:
        lines += _md_table(("Split", "File", "Label", "Reason"),
                           [(q["split"], q["file"], q["label"], q["reason"]) for q in report["quarantined"]])
    else:
        lines.append("None: every image decoded.")
    lines += ["", "## Skipped files", "", *(f"- `{p}`" for p in report.get("skipped", [])[:MD_SKIPPED_ROWS])]
    extra = len(report.get("skipped", [])) - MD_SKIPPED_ROWS
    lines.append(f"- … and {extra:,} more (report.json lists all)" if extra > 0 else
                 "" if report.get("skipped") else "None.")
    return "\n".join(lines).rstrip("\n") + "\n"


def _html_table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def to_html(report: dict[str, Any]) -> str:
    parts = [f"<h1>Data report: {html.escape(report['dataset'])}</h1>",
             _html_table(("Item", "Value"), _overview(report))]
    for split, body in report["splits"].items():
        parts += [f"<h2>{html.escape(split)}</h2>", _html_table(("Item", "Value"), _split_rows(body)),
                  _html_table(("Class", "Images"), list(body["per_class"].items()))]
    parts.append("<h2>Quarantined images</h2>")
    parts.append(_html_table(("Split", "File", "Label", "Reason"),
                             [(q["split"], q["file"], q["label"], q["reason"]) for q in report["quarantined"]])
                 if report["quarantined"] else "<p>None: every image decoded.</p>")
    parts.append("<h2>Skipped files</h2>")
    parts.append(_html_table(("File",), [(p,) for p in report.get("skipped", [])])
                 if report.get("skipped") else "<p>None.</p>")
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Data report</title><style>{style}</style>"
            f"</head><body>{''.join(parts)}</body></html>\n")
