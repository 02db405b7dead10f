"""Evaluation metrics, the KFP confusion-matrix format, report files and PIL plots (no framework)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from mindzoo.engine import plots
from mindzoo.engine.evaluate import AccuracyGateFailed, Evaluator, check_gate, kfp_confusion_matrix, write_report
from mindzoo.engine.trainer import improves


def _batches():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(23, 6)).astype(np.float32)
    labels = rng.integers(0, 6, size=23)
    return logits, labels


def test_counts_every_image_across_uneven_batches():
    logits, labels = _batches()
    whole = Evaluator(6, [f"c{i}" for i in range(6)])
    whole.update(logits, labels)
    split = Evaluator(6, [f"c{i}" for i in range(6)])
    for lo, hi in ((0, 8), (8, 16), (16, 23)):  # the last batch is partial
        split.update(logits[lo:hi], labels[lo:hi])
    a, b = whole.result(), split.result()
    assert a.images == b.images == 23
    assert (a.top1, a.top5, a.loss) == pytest.approx((b.top1, b.top5, b.loss))
    np.testing.assert_array_equal(a.confusion, b.confusion)


def test_top1_top5_loss_confusion_and_misclassified():
    logits, labels = _batches()
    ev = Evaluator(6, [f"c{i}" for i in range(6)], max_misclassified=100)
    ev.update(logits, labels)
    result = ev.result()
    predicted = logits.argmax(axis=1)
    top5 = np.argsort(-logits, axis=1)[:, :5]
    assert result.top1 == pytest.approx((predicted == labels).mean())
    assert result.top5 == pytest.approx(np.mean([labels[i] in top5[i] for i in range(23)]))
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert result.loss == pytest.approx(-log_probs[np.arange(23), labels].mean(), rel=1e-6)
    assert result.confusion.sum() == 23 and np.trace(result.confusion) == (predicted == labels).sum()
    assert len(result.misclassified) == 23 - np.trace(result.confusion)
    first = result.misclassified[0]
    assert first["label"] != first["predicted"] and first["label_name"] == f"c{first['label']}"
    per_class = result.per_class
    for i in range(6):
        total = (labels == i).sum()
        expected = None if total == 0 else ((predicted == i) & (labels == i)).sum() / total
        assert per_class[f"c{i}"] == (pytest.approx(expected) if expected is not None else None)


def test_kfp_confusion_matrix_format():
    ev = Evaluator(3, ["cat", "dog", "eel"])
    ev.update(np.array([[3, 1, 0], [0, 2, 1], [0, 5, 1]], np.float32), np.array([0, 1, 2]))
    matrix = kfp_confusion_matrix(ev.result())
    assert matrix == {"annotationSpecs": [{"displayName": "cat"}, {"displayName": "dog"}, {"displayName": "eel"}],
                      "rows": [{"row": [1, 0, 0]}, {"row": [0, 1, 0]}, {"row": [0, 1, 0]}]}


def test_report_files(tmp_path):
    logits, labels = _batches()
    ev = Evaluator(6, [f"class {i}" for i in range(6)])
    ev.update(logits, labels)
    paths = write_report(ev.result(), tmp_path, "test report", {"model": "m"})
    assert json.loads(paths["metrics"].read_text())["images"] == 23
    body = json.loads(paths["confusion_json"].read_text())
    assert np.array(body["matrix"]).sum() == 23 and body["kfp"]["rows"]
    assert Image.open(paths["confusion_png"]).size[0] > 100
    assert "| class 0 |" in paths["report_md"].read_text()
    assert "<table" in paths["report_html"].read_text()


def test_accuracy_gate():
    ev = Evaluator(2)
    ev.update(np.array([[1, 0], [0, 1], [1, 0], [1, 0]], np.float32), np.array([0, 1, 1, 1]))
    result = ev.result()  # top-1 0.5, top-5 1.0
    check_gate(result, 0.5, 1.0)
    with pytest.raises(AccuracyGateFailed, match="top-1 0.5000 < 0.6"):
        check_gate(result, 0.6, 0.0)
    assert AccuracyGateFailed.exit_code != 0


def test_best_rules():
    assert improves({"top1": 0.5, "top5": 0.9}, None, "top1")
    assert improves({"top1": 0.5, "top5": 0.1}, {"top1": 0.5, "top5": 0.9}, "top1")
    # SPPNet (§1.3): a new best needs top-1 >= best AND top-5 >= best.
    assert not improves({"top1": 0.6, "top5": 0.8}, {"top1": 0.5, "top5": 0.9}, "top1_and_top5")
    assert improves({"top1": 0.5, "top5": 0.9}, {"top1": 0.5, "top5": 0.9}, "top1_and_top5")


def test_line_chart_skips_non_finite_points(tmp_path):
    path = plots.line_chart({"a": ([1, 2, 3], [1.0, float("nan"), 0.5]), "b": ([1], [2.0])}, tmp_path / "c.png",
                            title="t", xlabel="epoch")
    image = Image.open(path)
    assert image.size == (720, 420) and len(image.getcolors(maxcolors=100000) or []) > 2
