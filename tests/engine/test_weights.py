"""Matching outside weights to a network (``--init-from``), and the fine-tuning flags.

Pure logic: the "networks" are name -> shape tables and the sources numpy arrays; the
heads are what :func:`mindzoo.engine.weights.head_names` derives from two builds.
"""

import numpy as np
import pytest

pytestmark = pytest.mark.runtime

from mindzoo.config import TrainConfig  # noqa: E402
from mindzoo.engine import modelzoo, weights  # noqa: E402
from mindzoo.engine.checkpoint import CheckpointMismatch  # noqa: E402
from mindzoo.errors import ConfigError, MindzooError  # noqa: E402
from mindzoo.export import card  # noqa: E402
from mindzoo.registry import list_models  # noqa: E402

SHAPES = {"features.conv1.conv.weight": (4, 3, 3, 3), "features.conv1.bn.gamma": (4,), "classifier.weight": (5, 4),
          "classifier.bias": (5,)}
HEADS = {"classifier.weight", "classifier.bias"}


def source(**changes):
    shapes = {**SHAPES, **changes}
    return {n: np.full(s, i, np.float32) for i, (n, s) in enumerate(shapes.items())}


def fit(arrays, strict=False):
    return weights.fit(arrays, model="googlenet", shapes=SHAPES, heads=HEADS, num_classes=5, where="src.ckpt",
                       strict=strict)


@pytest.mark.parametrize("model", list_models("mindspore"))
def test_the_head_is_every_parameter_whose_shape_follows_the_class_count(model):
    size = {"inception_v4": 75, "sppnet": 112, "zfnet": 64}.get(model, 32)
    a, b = (modelzoo.model_shapes(model, num_classes=c, input_size=size) for c in (7, 8))
    heads = weights.head_names(a, b)
    expected = {"inception_v4": {"fc.weight", "fc.bias", "out_bn.gamma", "out_bn.beta", "out_bn.moving_mean",
                                 "out_bn.moving_variance"}}
    last = "classifier" if model in ("zfnet", "sppnet", "googlenet") else "fc"
    assert heads == expected.get(model, {f"{last}.weight", f"{last}.bias"})


def test_same_class_count_loads_everything():
    fitted = fit(source())
    assert list(fitted.arrays) == list(SHAPES) and fitted.reinitialised == [] and fitted.names == "mindzoo"


def test_another_class_count_reinitialises_the_head_and_names_it():
    fitted = fit(source(**{"classifier.weight": (9, 4), "classifier.bias": (9,)}))
    assert fitted.reinitialised == ["classifier.weight", "classifier.bias"]
    assert list(fitted.arrays) == ["features.conv1.conv.weight", "features.conv1.bn.gamma"]
    with pytest.raises(CheckpointMismatch, match=r"src.ckpt has 9 classes \(classifier.weight is \(9, 4\)\), the "
                                                 r"run trains 5 \(--strict\)"):
        fit(source(**{"classifier.weight": (9, 4), "classifier.bias": (9,)}), strict=True)


def test_optimizer_entries_are_ignored_and_reported():
    fitted = fit({**source(), "moments.classifier.bias": np.zeros(5), "learning_rate": np.zeros(1),
                  "global_step": np.zeros(1, np.int32)})
    assert fitted.ignored == ["moments.classifier.bias", "learning_rate", "global_step"]
    assert "ignored 3 optimizer entries (moments.*, learning_rate, global_step)" in weights.describe(
        fitted, weights.WeightSource("src.ckpt", None, "ab" * 32, {}))


@pytest.mark.parametrize("arrays, message", [
    ({**source(), "features.extra.weight": np.zeros(2)}, "unexpected parameter 'features.extra.weight'"),
    ({k: v for k, v in source().items() if k != "features.conv1.bn.gamma"}, "no parameter 'features.conv1.bn.gamma'"),
    (source(**{"features.conv1.conv.weight": (4, 3, 5, 5)}),
     r"features.conv1.conv.weight has shape \(4, 3, 5, 5\), expected \(4, 3, 3, 3\)"),
    (source(**{"classifier.weight": (5, 8)}), r"classifier.weight has shape \(5, 8\), expected \(5, 4\)"),
    ({"conv1.weight": np.zeros(2), "fc1.weight": np.zeros(2)}, "not a ModelZoo googlenet checkpoint: parameter "
                                                               "'conv1.weight' has no place"),
])
def test_what_does_not_fit_is_one_error_naming_the_source_and_the_parameter(arrays, message):
    with pytest.raises(CheckpointMismatch, match=message) as err:
        fit(arrays)
    assert str(err.value).startswith("src.ckpt ")


@pytest.mark.parametrize("content", [b"", b"not a checkpoint\n", b"\x08\x01\x12\x05conv1" * 3])
def test_a_file_that_is_no_checkpoint_is_one_error(tmp_path, content):
    path = tmp_path / "bad.ckpt"
    path.write_bytes(content)
    with pytest.raises(MindzooError, match=r"^my.ckpt is not a readable checkpoint") as err:
        weights.read_arrays(path, "my.ckpt")
    assert str(tmp_path) not in str(err.value)


def test_recipe_keys_of_the_modelzoo_configs_and_finetune_keys_map_onto_the_flags():
    cfg = TrainConfig(dataset="d", set=("epochs=2", "pre_trained=True", "checkpoint_path=s3://b/m",
                                        "finetune.freeze=backbone", "finetune.head_lr_mult=10"))
    assert (cfg.set, cfg.init_from, cfg.freeze, cfg.head_lr_mult) == (("epochs=2",), "s3://b/m", "backbone", 10.0)
    off = TrainConfig(dataset="d", set=("pre_trained=False", "checkpoint_path=/x.ckpt"))
    assert off.init_from == "" and off.set == ()


@pytest.mark.parametrize("kwargs, key", [
    ({"set": ("pre_trained=True",)}, "set"),
    ({"freeze": "backbone"}, "init_from"),
    ({"init_from": "a", "head_lr_mult": 0.0}, "head_lr_mult"),
    ({"init_from": "a", "set": ("checkpoint_path=b",)}, "init_from"),
    ({"init_from": "a", "set": ("finetune.head_lr_mult=x",)}, "train.set.finetune.head_lr_mult"),
])
def test_bad_fine_tuning_settings_name_their_key(kwargs, key):
    with pytest.raises(ConfigError) as err:
        TrainConfig(dataset="d", **kwargs)
    assert err.value.key == key


def test_the_model_card_names_the_weights_training_started_from():
    class Point:
        identity = {"run_id": "r", "init_from": {"uri": "models:/googlenet_cifar10/1", "sha256": "ab12"}}
        run: dict = {}

    lineage = card.lineage(Point())
    assert lineage["init_from"] == "models:/googlenet_cifar10/1" and lineage["init_from_sha256"] == "ab12"
