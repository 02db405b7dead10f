"""Write the network in each requested format; report per format what was made and why not.

MindIR is required (its failure fails the step). ONNX is attempted where asked
("auto" asks for it) and a failure is recorded with the exporter's reason —
e.g. an operator MindSpore's ONNX exporter cannot convert (LRN: see
:data:`ONNX_BLOCKERS`). AIR is produced by MindSpore only on the Ascend backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mindzoo.errors import ConfigError, MindzooError
from mindzoo.storage import sha256_file

SUFFIX = {"mindir": ".mindir", "onnx": ".onnx", "air": ".air"}

# Models MindSpore 2.10's ONNX exporter cannot convert, and the operator it has no conversion for
# (tests/export/test_onnx_support.py keeps this true for every registered model). ONNX is still
# attempted for them, so a MindSpore that learns the operator will export them.
ONNX_BLOCKERS = {
    "zfnet": "LRN",  # local response normalisation after conv1/conv2; ONNX has LRN, the exporter lacks the map
    "sppnet": "LRN",  # ZFNet's body under the pyramid pooling
}


@dataclass
class Exported:
    format: str
    path: Path | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.path is not None

    def describe(self) -> dict[str, Any]:
        if not self.ok:
            return {"format": self.format, "made": False, "reason": self.error}
        return {"format": self.format, "made": True, "file": self.path.name, "size_bytes": self.path.stat().st_size,
                "sha256": sha256_file(self.path)}


def plan_formats(asked: tuple[str, ...], device: str) -> list[str]:
    """The formats to write: ``auto`` = MindIR + ONNX (+ AIR on Ascend); MindIR is always first."""
    wanted = {"mindir"}
    for fmt in asked:
        wanted |= {"onnx", *(("air",) if device == "ascend" else ())} if fmt == "auto" else {fmt}
    if "air" in wanted and device != "ascend":
        raise ConfigError("export.formats", "AIR can only be exported on the Ascend backend (MindSpore's AIR "
                                            "writer needs it); run with --device ascend or leave air out")
    return [f for f in ("mindir", "onnx", "air") if f in wanted]


def example_input(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """The fixed batch used to trace the graph and to check parity."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def export(net: Any, shape: tuple[int, ...], folder: Path, stem: str, formats: list[str]) -> list[Exported]:
    import mindspore as ms

    folder.mkdir(parents=True, exist_ok=True)
    x = ms.Tensor(example_input(shape))
    done = []
    for fmt in formats:
        path = folder / f"{stem}{SUFFIX[fmt]}"
        try:
            ms.export(net, x, file_name=str(folder / stem), file_format=fmt.upper())
        except (RuntimeError, ValueError, TypeError) as err:
            if fmt == "mindir":
                raise MindzooError(f"MindIR export failed: {_reason(err)}") from None
            done.append(Exported(fmt, None, _reason(err)))
            continue
        done.append(Exported(fmt, path) if path.is_file() else Exported(fmt, None, "exporter wrote no file"))
    return done


def _reason(err: Exception) -> str:
    """The first meaningful line of a MindSpore exception (they carry long C++ stack appendices)."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip() and not set(ln.strip()) <= set("-=")]
    lines = [ln for ln in lines if not ln.startswith(("- C++ Call Stack", "mindspore/ccsrc"))]
    return f"{type(err).__name__}: {lines[0][:300] if lines else ''}"
