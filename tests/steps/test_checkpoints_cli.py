"""`mindzoo checkpoints import|export`: ModelZoo .ckpt files in and out, through the real CLI and MinIO.

The ModelZoo checkpoint is built from the ModelZoo's own parameter list
(tests/models/modelzoo_names/googlenet_cifar10.tsv: names, shapes, checkpoint order)
with random weights plus the optimizer entries its training callback saves.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.runtime, pytest.mark.stack]

LIST = Path(__file__).resolve().parents[1] / "models" / "modelzoo_names" / "googlenet_cifar10.tsv"


def one_error_line(proc) -> str:
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode != 0 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return errors[0]


def modelzoo_params() -> list[tuple[str, tuple[int, ...]]]:
    rows = [line.split("\t") for line in LIST.read_text().splitlines() if line and not line.startswith("#")][1:]
    return [(name, tuple(int(d) for d in shape.split("x"))) for name, shape, _ in rows]


def save(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    import mindspore as ms

    ms.save_checkpoint([{"name": n, "data": ms.Tensor(v)} for n, v in arrays.items()], str(path))
    return path


def load(path: Path) -> dict[str, np.ndarray]:
    import mindspore as ms

    return {n: p.asnumpy() for n, p in ms.load_checkpoint(str(path)).items()}


@pytest.fixture(scope="module")
def modelzoo_ckpt(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    weights = {n: (rng.standard_normal(s) * 0.05).astype(np.float32) for n, s in modelzoo_params()}
    optimizer = {f"moments.{n}": np.zeros_like(v) for n, v in list(weights.items())[:4]}
    optimizer.update(learning_rate=np.array([0.1], np.float32), global_step=np.array([1000], np.int32))
    return save(tmp_path_factory.mktemp("mz") / "googlenet-200_1251.ckpt", {**weights, **optimizer})


def test_modelzoo_to_mindzoo_to_modelzoo_is_identical(stack, bucket, modelzoo_ckpt, tmp_path):
    dest = f"s3://{bucket}/imported/googlenet"
    proc = stack.cli("checkpoints", "import", "--recipe", "googlenet_cifar10", str(modelzoo_ckpt), dest,
                     env="runtime")
    assert "ignored 6 optimizer entries" in proc.stderr and "moments.*" in proc.stderr
    back = tmp_path / "back.ckpt"
    stack.cli("checkpoints", "export", "--to", "modelzoo", dest, str(back), env="runtime")
    original, again = load(modelzoo_ckpt), load(back)
    weights = {n: v for n, v in original.items() if not n.startswith("moments.") and n not in ("learning_rate",
                                                                                               "global_step")}
    assert list(again) == list(weights)  # the ModelZoo's names, every one, in its order
    assert all(again[n].dtype == v.dtype and np.array_equal(again[n], v) for n, v in weights.items())


def test_the_imported_folder_is_a_checkpoint_like_any_other(stack, modelzoo_ckpt, tmp_path):
    from test_train import digits_dataset

    folder = tmp_path / "imported"
    stack.cli("checkpoints", "import", "--recipe", "googlenet_cifar10", "--input-size", "16", str(modelzoo_ckpt),
              str(folder), env="runtime")
    assert sorted(p.name for p in folder.iterdir()) == ["model.ckpt", "model.json", "state.json"]
    identity = json.loads((folder / "model.json").read_text())
    assert (identity["model"], identity["num_classes"], identity["input_size"]) == ("googlenet", 10, 16)
    assert identity["init_from"]["uri"] == str(modelzoo_ckpt) and len(identity["init_from"]["sha256"]) == 64
    dataset = digits_dataset(stack)
    proc = stack.cli("evaluate", "--checkpoint", str(folder), "--dataset", dataset["uri"], env="runtime")
    assert "top-1" in proc.stderr
    proc = stack.cli("export", "--checkpoint", str(folder), "--formats", "mindir", "--no-register", "--output",
                     f"s3://{dataset['bucket']}/exports/imported", "--no-tracking-enabled", env="runtime")
    assert "parity: max abs logit difference" in proc.stderr


@pytest.mark.parametrize("make, args, message", [
    ("truncated", (), "is not a readable checkpoint"),
    ("text", (), "is not a readable checkpoint"),
    ("as_is", ("--recipe", "resnet50_bam"), "is not a ModelZoo resnet50_bam checkpoint: parameter 'conv1.conv.weight' "
                                            "has no place"),
    ("as_is", ("--num-classes", "5"), r"has 10 classes \(classifier.weight is \(10, 1024\)\), not --num-classes 5"),
    ("unknown", (), "parameter 'block9z.b1.conv.weight' has no place"),
    ("missing", (), "no parameter 'block3a.b1.bn.beta'"),
])
def test_bad_input_is_one_error_line_and_writes_nothing(stack, modelzoo_ckpt, tmp_path, make, args, message):
    src = tmp_path / "in.ckpt"
    if make == "truncated":
        src.write_bytes(modelzoo_ckpt.read_bytes()[:100_000])
    elif make == "text":
        src.write_text("not a checkpoint\n")
    elif make == "as_is":
        src = modelzoo_ckpt
    else:
        arrays = load(modelzoo_ckpt)
        if make == "unknown":
            arrays["block9z.b1.conv.weight"] = np.zeros((2, 2), np.float32)
        else:
            arrays.pop("block3a.b1.bn.beta")
        save(src, arrays)
    flags = args if "--recipe" in args else ("--recipe", "googlenet_cifar10", *args)
    proc = stack.cli("checkpoints", "import", *flags, str(src), str(tmp_path / "out"), env="runtime", check=False)
    error = one_error_line(proc)
    assert re.search(message, error) and str(src) in error, error
    assert not (tmp_path / "out").exists()
