"""Label files of the published recipes' flat validation folders.

Two formats, both mapping an image to its class index (the class folder's
position in sorted order, as ``create_imagenet2012_label.py`` and
``imgid2label.py`` number them):

- ``imagenet_label.json``: ``{"<file name>": index}``;
- text (``img_id_2_label.txt``): one ``<image stem>:<index>`` per line.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from mindzoo.errors import DataError

DEFAULT_NAMES = ("imagenet_label.json", "img_id_2_label.txt")


def parse(path: Path) -> dict[str, int]:
    """{key: label}; keys are file names (JSON) or stems (text), see :func:`lookup`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read label file {path}: {getattr(err, 'strerror', None) or err}") from None
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        return _parse_json(text, path)
    return _parse_text(text, path)


def _parse_json(text: str, path: Path) -> dict[str, int]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"label file {path} is not valid JSON: {err.msg} at line {err.lineno}") from None
    if not isinstance(data, dict) or not data:
        raise DataError(f"label file {path} must be a non-empty JSON object {{file: class index}}")
    out = {}
    for name, label in data.items():
        if isinstance(label, bool) or not isinstance(label, int):
            raise DataError(f"label file {path}: {name!r} has label {label!r}, expected an integer class index")
        out[str(name)] = label
    return out


def _parse_text(text: str, path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        stem, sep, label = line.strip().rpartition(":")
        if not sep or not stem or not label.strip().lstrip("-").isdigit():
            raise DataError(f"{path}:{lineno}: expected `<image stem>:<class index>`, got {line.strip()[:80]!r}")
        out[stem.strip()] = int(label)
    if not out:
        raise DataError(f"label file {path} is empty")
    return out


def lookup(labels: dict[str, int], file_name: str) -> int | None:
    """The label of ``file_name``: by full name (JSON style), else by stem (text style)."""
    if file_name in labels:
        return labels[file_name]
    return labels.get(PurePosixPath(file_name).stem)
