"""Export formats, the MindIR signature and the parity check (no object store needed)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.runtime


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory):
    from mindzoo.export import formats, source

    point = source.resolve(str(checkpoint), None, tmp_path_factory.mktemp("work"))
    net = source.build_network(point)
    out = tmp_path_factory.mktemp("export")
    made = formats.export(net, (1, 3, 32, 32), out, "googlenet", ["mindir", "onnx"])
    return point, net, out, made


def test_identity_drives_the_rebuild(exported):
    point = exported[0]
    assert (point.model, point.num_classes, point.input_size) == ("googlenet", 10, 32)
    assert point.data_config.eval.crop_size == 32 and point.metrics() == {"top1": 0.5}


def test_mindir_always_and_onnx_for_googlenet(exported):
    _, _, out, made = exported
    by_format = {m.format: m for m in made}
    assert by_format["mindir"].ok and (out / "googlenet.mindir").is_file()
    assert by_format["onnx"].ok, by_format["onnx"].error  # GoogLeNet's ops all export (global mean, not adaptive)
    described = by_format["mindir"].describe()
    assert described["size_bytes"] > 1000 and len(described["sha256"]) == 64


def test_signature_reads_the_input_shape(exported):
    from mindzoo.export import mindir

    assert mindir.input_shape(exported[2] / "googlenet.mindir") == (1, 3, 32, 32)
    assert mindir.signature(exported[2] / "googlenet.mindir")["outputs"][0]["shape"] == [1, 10]


def test_parity_passes_on_the_real_export(exported):
    from mindzoo.export import parity

    _, net, out, _ = exported
    assert parity.check(net, out / "googlenet.mindir", (1, 3, 32, 32), 1e-4) <= 1e-4


def test_parity_catches_a_corrupted_mindir(exported, tmp_path):
    import numpy as np
    from mindspore.train import mind_ir_pb2

    from mindzoo.export import parity

    _, net, out, _ = exported
    model = mind_ir_pb2.ModelProto()
    model.ParseFromString((out / "googlenet.mindir").read_bytes())
    bias = next(p for p in model.graph.parameter if p.name.endswith("classifier.bias"))
    bias.raw_data = (np.frombuffer(bias.raw_data, np.float32) + 0.5).astype(np.float32).tobytes()  # corrupted
    bad = tmp_path / "googlenet.mindir"
    bad.write_bytes(model.SerializeToString())
    with pytest.raises(parity.ParityError, match="parity check failed"):
        parity.check(net, bad, (1, 3, 32, 32), 1e-3)


def test_air_needs_ascend_and_auto_plans_onnx():
    from mindzoo.errors import ConfigError
    from mindzoo.export import formats

    assert formats.plan_formats(("auto",), "cpu") == ["mindir", "onnx"]
    assert formats.plan_formats(("auto",), "ascend") == ["mindir", "onnx", "air"]
    assert formats.plan_formats(("onnx",), "cpu") == ["mindir", "onnx"]
    with pytest.raises(ConfigError, match="AIR can only be exported on the Ascend backend"):
        formats.plan_formats(("air",), "cpu")


def test_onnx_failure_is_reported_not_raised(tmp_path):
    """A network with an op the ONNX exporter lacks (AdaptiveAvgPool2D) gets a reason, and MindIR still works."""
    import mindspore as ms

    from mindzoo.export import formats, source

    source.setup("cpu")

    class Net(ms.nn.Cell):
        def __init__(self):
            super().__init__()
            self.pool = ms.nn.AdaptiveAvgPool2d((1, 1))

        def construct(self, x):
            return self.pool(x).reshape(x.shape[0], -1)

    made = {m.format: m for m in formats.export(Net(), (1, 3, 8, 8), tmp_path, "net", ["mindir", "onnx"])}
    assert made["mindir"].ok
    assert not made["onnx"].ok and made["onnx"].error
