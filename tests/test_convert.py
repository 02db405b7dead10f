"""Checkpoint conversion: names both ways for every model, safetensors that MindSpore reads without torch."""

import pytest

pytestmark = [pytest.mark.runtime]

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402

import mindspore as ms  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402

from mindzoo import convert  # noqa: E402
from mindzoo.registry import create_model, list_models  # noqa: E402

NAMES = list_models("torch")
SIZES = {"googlenet": 32, "sppnet": 112, "inception_v4": 75}


def test_batch_norm_leaves_are_renamed_and_nothing_else():
    keys = ["features.conv1.conv.weight", "features.conv1.bn.weight", "features.conv1.bn.bias",
            "features.conv1.bn.running_mean", "features.conv1.bn.running_var",
            "features.conv1.bn.num_batches_tracked", "fc.weight", "fc.bias"]
    names = convert.mindspore_names(keys)
    bn = "features.conv1.bn."
    assert names == {
        "features.conv1.conv.weight": "features.conv1.conv.weight", bn + "weight": bn + "gamma",
        bn + "bias": bn + "beta", bn + "running_mean": bn + "moving_mean", bn + "running_var": bn + "moving_variance",
        "fc.weight": "fc.weight", "fc.bias": "fc.bias"}
    assert convert.torch_names(names.values()) == {v: k for k, v in names.items()}


@pytest.mark.parametrize("name", NAMES)
def test_mapping_covers_every_parameter_both_ways(name):
    size = SIZES.get(name, 64)
    with torch.device("meta"):
        torch_keys = set(create_model(name, framework="torch", num_classes=10, input_size=size).state_dict())
    msnet = create_model(name, num_classes=10, input_size=size)
    ms_names = set(msnet.parameters_dict())
    assert set(convert.mindspore_names(torch_keys).values()) == ms_names
    to_torch = convert.torch_names(ms_names)
    assert len(set(to_torch.values())) == len(ms_names)
    assert set(to_torch.values()) == {k for k in torch_keys if not k.endswith("num_batches_tracked")}
    tnet = create_model(name, framework="torch", num_classes=10, input_size=size)
    tnet.load_state_dict(convert.mindspore_to_torch(msnet, name), strict=True)  # MindSpore -> torch loads


def test_model_name_check_rejects_a_foreign_checkpoint():
    with torch.device("meta"):
        state = create_model("googlenet", framework="torch", num_classes=10).state_dict()
    with pytest.raises(ValueError, match="does not match model 'resnet50'"):
        convert.torch_to_mindspore(state, "resnet50")


_CHILD = textwrap.dedent("""
    import json, sys
    sys.modules["torch"] = None  # any `import torch` now raises ImportError
    import numpy as np, mindspore as ms
    from mindzoo.convert import load_into_mindspore
    from mindzoo.registry import create_model
    path, x_path, out_path = sys.argv[1:4]
    net = create_model("googlenet", num_classes=10, input_size=32)
    net.set_train(False)
    load_into_mindspore(net, path)
    np.save(out_path, net(ms.Tensor(np.load(x_path))).asnumpy())
    print(json.dumps({"torch": sys.modules["torch"] is None}))
""")


def test_safetensors_with_mindspore_names_load_without_torch(tmp_path):
    torch.manual_seed(0)
    tnet = create_model("googlenet", framework="torch", num_classes=10, input_size=32).eval()
    with torch.no_grad():
        for m in tnet.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    path = convert.save_safetensors_ms_names(convert.torch_to_mindspore(tnet.state_dict(), "googlenet"),
                                             tmp_path / "googlenet.safetensors", metadata={"model": "googlenet"})
    stored = load_file(str(path))
    assert any(k.endswith(".gamma") for k in stored) and not any("running" in k or "num_batches" in k for k in stored)
    x = np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"torch": True}
    with torch.no_grad():
        expected = tnet(torch.from_numpy(x)).numpy()
    assert np.abs(np.load(tmp_path / "y.npy") - expected).max() <= 1e-4


def test_torch_state_dict_is_converted_when_saved_directly(tmp_path):
    state = create_model("resnet50", framework="torch", num_classes=10, input_size=64).state_dict()
    path = convert.save_safetensors_ms_names(state, tmp_path / "r.safetensors")
    msnet = create_model("resnet50", num_classes=10, input_size=64)
    convert.load_into_mindspore(msnet, path)
    loaded = convert.mindspore_params(msnet)
    assert set(loaded) == set(load_file(str(path)))
    assert np.array_equal(loaded["features.stem.0.bn.moving_variance"],
                          state["features.stem.0.bn.running_var"].numpy())
    assert isinstance(ms.load_checkpoint(str(path), format="safetensors"), dict)
