"""Which registered models MindSpore's ONNX exporter converts: every model is exported, and the ones it
cannot convert are exactly ``formats.ONNX_BLOCKERS``, failing on the operator named there."""

from __future__ import annotations

import pytest

from mindzoo.registry import list_models

pytestmark = pytest.mark.runtime

# Smallest input each family builds at (Inception-v4's stem needs >= 75 px, SPP an exact pyramid).
SIZE = {"sppnet": 112, "inception_v4": 75, "googlenet": 32}


@pytest.mark.parametrize("model", list_models("mindspore"))
def test_onnx_is_made_unless_a_listed_operator_blocks_it(model, tmp_path):
    from mindzoo.export import formats
    from mindzoo.registry import create_model

    size = SIZE.get(model, 64)
    net = create_model(model, num_classes=10, input_size=size)
    net.set_train(False)
    made = {m.format: m for m in formats.export(net, (1, 3, size, size), tmp_path, model, ["mindir", "onnx"])}
    assert made["mindir"].ok
    if model in formats.ONNX_BLOCKERS:
        assert not made["onnx"].ok and f"key {formats.ONNX_BLOCKERS[model]} in convert map" in made["onnx"].error
        assert not (tmp_path / f"{model}.onnx").exists()
    else:
        assert made["onnx"].ok and (tmp_path / f"{model}.onnx").stat().st_size > 0, made["onnx"].error
