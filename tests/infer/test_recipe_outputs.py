"""Inference output and preprocessing per recipe, as each ModelZoo recipe's own Ascend 310 app does them.

The acc.log lines are checked against the formats the facts sheet quotes from each recipe's
postprocess.py (modelzoo_facts.md §1.5, §2.4, §3.5, §4.4, §5.5), written out here again as
patterns; the 310 preprocessing against §1.5 (ZFNet/SPPNet: short side 256, not eval.py's square).
"""

from __future__ import annotations

import io
import re

import numpy as np
import pytest

from conftest import infer_cli
from mindzoo.archs import DATA_CONFIGS, get_data_config
from mindzoo.infer.report import ACC_FORMATS, Result, acc_lines, parse_acc

pytestmark = pytest.mark.runtime

TOTAL_DATA = [r"Total data: {n}, top1 accuracy: {t1}, top5 accuracy: {t5}\."]  # §1.5, §2.4 (§4.4: last known)
ALLREDUCE_1 = [r"after allreduce eval: top1_correct={c1}, tot={n}, acc={p1:.2f}%"]  # §3.5 CIFAR-10
ALLREDUCE_5 = [*ALLREDUCE_1, r"after allreduce eval: top5_correct={c5}, tot={n}, acc={p5:.2f}%"]  # §3.5 ImageNet
STEP_SUM = [r"========step:{n}========", r"========sum:{c1}========", r"========accuracy:{p1}========"]  # §5.5
EXPECTED = {"zfnet": TOTAL_DATA, "sppnet": TOTAL_DATA, "resnet50_bam": TOTAL_DATA, "genet_res50": TOTAL_DATA,
            "googlenet_cifar10": ALLREDUCE_1, "googlenet_imagenet": ALLREDUCE_5, "inception_v4": STEP_SUM}


def _result(labels_and_top5: list[tuple[int, list[int]]]) -> Result:
    result = Result([str(i) for i in range(10)])
    for i, (label, top) in enumerate(labels_and_top5):
        logits = np.zeros(10)
        logits[top] = np.arange(len(top), 0, -1)  # top[0] scores highest
        result.add(f"img{i}", label, logits)
    return result


# 8 images: the label is first for 5 of them, among the top-5 for 7.
ROWS = [(1, [1, 2, 3, 4, 5])] * 5 + [(3, [1, 2, 3, 4, 5])] * 2 + [(9, [1, 2, 3, 4, 5])]


def test_every_data_config_has_its_recipes_format():
    assert set(ACC_FORMATS) == set(EXPECTED) == set(DATA_CONFIGS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_acc_log_lines_are_the_recipes_postprocess_lines(name):
    result = _result(ROWS)
    n, (c1, c5) = len(ROWS), result.correct()
    values = {"n": n, "c1": c1, "c5": c5, "t1": c1 / n, "t5": c5 / n, "p1": c1 * 100.0 / n, "p5": c5 * 100.0 / n}
    lines = acc_lines(result, name)
    assert len(lines) == len(EXPECTED[name])
    for line, pattern in zip(lines, EXPECTED[name]):
        assert re.fullmatch(pattern.format(**values), line), (line, pattern)
    parsed = parse_acc("\n".join(lines))
    assert parsed["images"] == n and parsed["top1"] == pytest.approx(c1 / n)
    assert parsed.get("top5", c5 / n) == pytest.approx(c5 / n)


def test_parse_acc_refuses_other_text():
    with pytest.raises(ValueError, match="not an acc.log"):
        parse_acc("accuracy: 0.9")


def _jpeg(width: int, height: int) -> bytes:
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=95)
    return out.getvalue()


@pytest.mark.parametrize("name", ["zfnet", "sppnet", "resnet50_bam"])
def test_310_preprocessing_resizes_the_short_side_as_the_apps_do(name):
    """§1.5/§2.4: Decode -> Resize(short side) -> CenterCrop -> Normalize(mean*255, std*255) -> HWC2CHW."""
    import mindspore.dataset.vision as vision

    from mindzoo.infer.preprocess import Preprocessor

    cfg = get_data_config(name).at_size(32)  # 256/224 scaled: short side 37, crop 32
    data = _jpeg(56, 40)  # not square: a square resize would squash it
    image = vision.Decode()(np.frombuffer(data, np.uint8))
    for op in (vision.Resize(37, vision.Inter.BILINEAR), vision.CenterCrop(32),
               vision.Normalize([m * 255 for m in cfg.mean], [s * 255 for s in cfg.std]), vision.HWC2CHW()):
        image = op(image)
    got = Preprocessor(cfg)(data)
    assert got.shape == (1, 3, 32, 32)
    np.testing.assert_allclose(got[0], image, atol=1e-5)


def test_inception_v4_acc_log_through_the_cli(exported, digits_tree, tmp_path):
    """The step writes and prints the recipe's lines (InceptionV4's three, top-1 only) for the data config used."""
    out = tmp_path / "result"
    proc = infer_cli("--model", str(exported), "--data", str(digits_tree), "--data-config", "inception_v4",
                     "--max-images", "40", "--output-dir", str(out))
    lines = (out / "acc.log").read_text().splitlines()
    assert [re.sub(r":[0-9.]+=", ":N=", line) for line in lines] == [
        "========step:N========", "========sum:N========", "========accuracy:N========"]
    assert all(line in proc.stderr for line in lines) and parse_acc("\n".join(lines))["images"] == 40
