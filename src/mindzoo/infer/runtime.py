"""Which engine runs the MindIR: MindSpore Lite's Ascend backend, or MindSpore's MindIR runtime on CPU.

``--device ascend310|ascend310p`` needs ``mindspore_lite`` (with its Ascend
backend and a device); asking for it where either is missing is a one-line
error, never a silent fallback. ``cpu`` loads the MindIR with
``mindspore.load`` and runs it as an ``nn.GraphCell``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from mindzoo.errors import MindzooError


class GraphCellRuntime:
    """MindSpore's own MindIR runtime (CPU)."""

    def __init__(self, path: Path) -> None:
        import mindspore as ms

        ms.set_device("CPU")
        ms.set_context(mode=ms.GRAPH_MODE)
        self.ms = ms
        try:
            self.cell = ms.nn.GraphCell(ms.load(str(path)))
        except (RuntimeError, ValueError) as err:
            raise MindzooError(f"MindSpore cannot load {path}: {str(err).strip().splitlines()[0][:200]}") from None
        self.name = f"mindspore {ms.__version__} MindIR GraphCell on CPU"

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.cell(self.ms.Tensor(x)).asnumpy()


class LiteAscendRuntime:
    """MindSpore Lite with the Ascend backend (Atlas 200/300 = 310, 300I Pro = 310P)."""

    def __init__(self, path: Path, device: str, device_id: int) -> None:
        import mindspore_lite as mslite

        context = mslite.Context()
        context.target = ["ascend"]
        context.ascend.device_id = device_id
        self.model = mslite.Model()
        try:
            self.model.build_from_file(str(path), mslite.ModelType.MINDIR, context)
        except (RuntimeError, ValueError) as err:
            raise MindzooError(f"MindSpore Lite cannot build {path.name} for {device} device {device_id}: "
                               f"{str(err).strip().splitlines()[0][:200]}") from None
        self.inputs = self.model.get_inputs()
        self.name = f"mindspore_lite {getattr(mslite, '__version__', '')} Ascend backend ({device}, device {device_id})"

    def predict(self, x: np.ndarray) -> np.ndarray:
        self.inputs[0].set_data_from_numpy(x)
        return self.model.predict(self.inputs)[0].get_data_to_numpy()


def require(device: str) -> None:
    """Fail in one line, before any work, where ``device`` cannot run here: the wrong image (no MindSpore
    Lite) first, then the host's Ascend software missing from the container."""
    if device == "cpu":
        return
    if importlib.util.find_spec("mindspore_lite") is None:
        raise MindzooError(f"--device {device} needs MindSpore Lite with its Ascend backend (the mindspore_lite "
                           "package of the Ascend image), which this environment lacks; use --device cpu here")
    from mindzoo.ascend import require_cann

    require_cann(device)


def select(device: str, path: Path, device_id: int = 0) -> Any:
    if device == "cpu":
        return GraphCellRuntime(path)
    require(device)
    return LiteAscendRuntime(path, device, device_id)
