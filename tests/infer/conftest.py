"""An exported tiny GoogLeNet (32 px, 10 classes) and the digits as class folders, shared by the infer tests."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_BIN = ROOT / ".venv" / "bin" / "mindzoo"


def export_folder(out: Path, *, size: int = 32, num_classes: int = 10) -> Path:
    """What `mindzoo export` publishes, minus the object store: MindIR + preprocessing.json."""
    import mindspore as ms

    from mindzoo.archs import get_data_config
    from mindzoo.export import PREPROCESSING_JSON, card, formats, source
    from mindzoo.registry import create_model

    source.setup("cpu")
    ms.set_seed(0)
    net = create_model("googlenet", num_classes=num_classes, input_size=size)
    net.set_train(False)
    shape = (1, 3, size, size)
    formats.export(net, shape, out, "googlenet", ["mindir"])
    data_cfg = get_data_config("googlenet_cifar10").at_size(size)
    (out / PREPROCESSING_JSON).write_text(json.dumps(card.preprocessing(data_cfg, shape)))
    return out


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    return export_folder(tmp_path_factory.mktemp("export"))


@pytest.fixture(scope="session")
def digits_tree(tmp_path_factory):
    from mindzoo.config import DigitsConfig
    from mindzoo.datasets import digits

    root = tmp_path_factory.mktemp("digits") / "tree"
    digits.make(DigitsConfig(format="imagefolder", size=32), root)
    return root


def infer_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(RUNTIME_BIN), "infer", "--no-tracking-enabled", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "GLOG_v": "3", "MLFLOW_TRACKING_URI": ""})
    if check and proc.returncode != 0:
        raise AssertionError(f"mindzoo infer exited {proc.returncode}:\n{proc.stderr}")
    return proc


def assert_one_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    assert proc.returncode != 0, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]
