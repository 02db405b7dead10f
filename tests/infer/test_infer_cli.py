"""`mindzoo infer` through the real CLI: acc.log / CSV / latency, label layouts and every bad input."""

from __future__ import annotations

import csv
import json
import re
import shutil

import numpy as np
import pytest

from conftest import assert_one_error, infer_cli

pytestmark = pytest.mark.runtime

# GoogLeNet's CIFAR-10 310 postprocess line (modelzoo_facts.md §3.5), which the exported digits model's recipe prints.
ALLREDUCE = re.compile(r"^after allreduce eval: top1_correct=(\d+), tot=(\d+), acc=(\d+\.\d\d)%$")


def _cell_predictions(exported, folder):
    """argmax of the MindIR over `folder` through the *batched* eval pipeline (the evaluate step's transforms)."""
    import mindspore as ms
    import mindspore.dataset as ds

    from mindzoo.archs import get_data_config
    from mindzoo.data.transforms import eval_ops

    graph = ms.nn.GraphCell(ms.load(str(exported / "googlenet.mindir")))
    data = ds.ImageFolderDataset(str(folder), shuffle=False, decode=False)
    data = data.map(eval_ops(get_data_config("googlenet_cifar10").at_size(32)), input_columns="image")
    preds, labels = [], []
    for image, label in data.create_tuple_iterator(num_epochs=1, output_numpy=True):
        preds.append(int(graph(ms.Tensor(image[None])).asnumpy().argmax()))
        labels.append(int(label))
    return np.array(preds), np.array(labels)


def test_class_folders_give_the_recipes_acc_log_and_every_image(exported, digits_tree, tmp_path):
    out = tmp_path / "result"
    proc = infer_cli("--model", str(exported), "--data", str(digits_tree), "--output-dir", str(out))
    assert "runtime: mindspore" in proc.stderr and "MindIR GraphCell on CPU" in proc.stderr
    match = ALLREDUCE.match((out / "acc.log").read_text().strip())  # one line, top-1 only (CIFAR-10)
    assert match, (out / "acc.log").read_text()
    total = sum(1 for p in (digits_tree / "val").rglob("*.JPEG"))
    assert int(match.group(2)) == total and match.group(0) in proc.stderr
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    assert len(rows) == total and set(rows[0]) >= {"file", "label", "top1_class", "top5_score"}
    latency = json.loads((out / "latency.json").read_text())
    assert latency["images"] == total
    for key in ("latency_mean_ms", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "images_per_second"):
        assert latency[key] > 0
    # Same preprocessing as the batched eval pipeline: identical top-1 per image.
    preds, labels = _cell_predictions(exported, digits_tree / "val")
    assert [int(r["top1_class"]) for r in rows] == preds.tolist()
    assert int(match.group(1)) == int((preds == labels).sum())
    assert float(match.group(3)) == pytest.approx(100 * float((preds == labels).mean()), abs=0.005)


def test_flat_folder_with_either_label_file(exported, digits_tree, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    labels = {}
    for label, folder in enumerate(sorted((digits_tree / "val").iterdir())):
        for image in sorted(folder.iterdir())[:3]:
            shutil.copy(image, flat / image.name)
            labels[image.name] = label
    (flat / "imagenet_label.json").write_text(json.dumps(labels))
    infer_cli("--model", str(exported / "googlenet.mindir"), "--data", str(flat), "--output-dir", str(tmp_path / "a"))
    assert ALLREDUCE.match((tmp_path / "a" / "acc.log").read_text()).group(2) == "30"
    text = tmp_path / "labels.txt"
    text.write_text("".join(f"{name.rsplit('.', 1)[0]}:{lbl}\n" for name, lbl in labels.items()))
    (flat / "imagenet_label.json").unlink()
    infer_cli("--model", str(exported), "--data", str(flat), "--label-file", str(text), "--output-dir",
              str(tmp_path / "b"))
    assert (tmp_path / "a" / "acc.log").read_text() == (tmp_path / "b" / "acc.log").read_text()


def test_input_shape_mismatch(exported, digits_tree, tmp_path):
    proc = infer_cli("--model", str(exported), "--data", str(digits_tree), "--input-size", "48",
                     "--output-dir", str(tmp_path), check=False)
    assert_one_error(proc, "input shape mismatch", "[1, 3, 32, 32]")


def test_label_file_naming_missing_images(exported, digits_tree, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    first = sorted((digits_tree / "val" / "n00000000").iterdir())[0]
    shutil.copy(first, flat / first.name)
    (flat / "img_id_2_label.txt").write_text(f"{first.stem}:0\nnot_there_1:3\n")
    proc = infer_cli("--model", str(exported), "--data", str(flat), "--output-dir", str(tmp_path / "o"), check=False)
    assert_one_error(proc, "not_there_1", "not in")


def test_undecodable_images_are_counted_and_fail_unless_allowed(exported, digits_tree, tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(digits_tree / "val", tree)
    (tree / "n00000003" / "broken.JPEG").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    (tree / "n00000005" / "empty.JPEG").write_bytes(b"")
    total = sum(1 for _ in tree.rglob("*.JPEG"))
    proc = infer_cli("--model", str(exported), "--data", str(tree), "--output-dir", str(tmp_path / "a"), check=False)
    assert_one_error(proc, f"2 of {total:,} images could not be decoded", "broken.JPEG")
    proc = infer_cli("--model", str(exported), "--data", str(tree), "--output-dir", str(tmp_path / "b"),
                     "--max-bad-fraction", "0.1")
    assert "warning: 2 of" in proc.stderr
    assert ALLREDUCE.match((tmp_path / "b" / "acc.log").read_text()).group(2) == str(total - 2)
    assert len((tmp_path / "b" / "bad_images.txt").read_text().splitlines()) == 2
    (tree / "n00000003" / "broken.JPEG").unlink()
    (tree / "n00000005" / "empty.JPEG").unlink()
    infer_cli("--model", str(exported), "--data", str(tree), "--output-dir", str(tmp_path / "b"))  # same folder
    assert not (tmp_path / "b" / "bad_images.txt").exists()  # no stale list from the run before


def test_a_broken_preprocessing_json_is_one_error_line(exported, digits_tree, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(exported, model)
    (model / "preprocessing.json").write_text('{"data_config": ')
    proc = infer_cli("--model", str(model), "--data", str(digits_tree), "--output-dir", str(tmp_path / "o"),
                     check=False)
    assert_one_error(proc, "preprocessing.json is not valid JSON")
    (model / "preprocessing.json").write_text('{"data_config": {}}')
    proc = infer_cli("--model", str(model), "--data", str(digits_tree), "--output-dir", str(tmp_path / "o"),
                     check=False)
    assert_one_error(proc, "names no data_config.name; pass --data-config")


def test_max_images_counts_bad_ones_and_keeps_the_order_across_chunks(exported, digits_tree, tmp_path):
    from mindzoo.infer.loop import CHUNK

    tree = tmp_path / "tree"
    shutil.copytree(digits_tree / "val", tree)
    (tree / "n00000000" / "zz_broken.JPEG").write_bytes(b"not an image")  # the last of the first class folder
    full = tmp_path / "full"
    infer_cli("--model", str(exported), "--data", str(tree), "--output-dir", str(full), "--max-bad-fraction", "0.1")
    limit = CHUNK + 13  # a second, partial chunk
    part = tmp_path / "part"
    infer_cli("--model", str(exported), "--data", str(tree), "--output-dir", str(part), "--max-bad-fraction", "0.1",
              "--max-images", str(limit))
    first_class = sum(1 for _ in (tree / "n00000000").iterdir())
    assert first_class < limit  # the bad image is among the first `limit`
    rows = list(csv.DictReader(open(part / "predictions.csv")))
    assert len(rows) == limit - 1 and ALLREDUCE.match((part / "acc.log").read_text()).group(2) == str(limit - 1)
    assert rows == list(csv.DictReader(open(full / "predictions.csv")))[:limit - 1]
    assert (part / "bad_images.txt").read_text().startswith("n00000000/zz_broken.JPEG")


def test_empty_folder(exported, tmp_path):
    (tmp_path / "empty").mkdir()
    proc = infer_cli("--model", str(exported), "--data", str(tmp_path / "empty"), "--output-dir",
                     str(tmp_path / "o"), check=False)
    assert_one_error(proc, "holds no images")


def test_ascend_without_mindspore_lite_is_a_clear_error(exported, digits_tree, tmp_path):
    import importlib.util

    if importlib.util.find_spec("mindspore_lite") is not None:
        pytest.skip("mindspore_lite is installed here")
    proc = infer_cli("--model", str(exported), "--data", str(digits_tree), "--device", "ascend310",
                     "--output-dir", str(tmp_path), check=False)
    assert_one_error(proc, "--device ascend310 needs MindSpore Lite")
