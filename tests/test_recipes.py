"""Recipes: every model has one, the numbers are the facts sheet's, overrides parse and validate."""

import pytest

pytestmark = pytest.mark.runtime

import dataclasses  # noqa: E402

from mindzoo.archs import MODELS  # noqa: E402
from mindzoo.errors import ConfigError  # noqa: E402
from mindzoo.recipes import list_recipes, load_recipe, recipe_path, to_flat_dict  # noqa: E402
from mindzoo.recipes.schema import NoDecayConfig  # noqa: E402
from mindzoo.registry import list_models  # noqa: E402

SUFFIX = ("suffix", (".bias", ".gamma", ".beta"))
SUBSTR = ("substring", ("beta", "gamma", "bias"))
FIXED_1024 = {"loss_scale.kind": "fixed", "loss_scale.value": 1024, "loss_scale.drop_overflow_update": False,
              "loss_scale.dynamic_init": 65536, "loss_scale.dynamic_factor": 2, "loss_scale.dynamic_window": 2000}


def _spec(epochs, batch, lr, wd, no_decay, smoothing, off, amp, seed, ckpt, lr_scaling=("fixed", 1, ()), **extra):
    out = {"lr_scaling.rule": lr_scaling[0], "lr_scaling.base_world_size": lr_scaling[1],
           "lr_scaling.published": lr_scaling[2],"epochs": epochs, "batch_size": batch, "optim.weight_decay": wd, "optim.no_decay.rule": no_decay[0],
           "optim.no_decay.patterns": no_decay[1], "loss.label_smoothing": smoothing, "loss.off_value": off,
           "amp_level.ascend": amp[0], "amp_level.gpu": amp[1], "amp_level.cpu": "O0", "keep_batchnorm_fp32": False,
           "seed": seed, "checkpoint.every_epochs": ckpt[0], "checkpoint.keep": ckpt[1], "checkpoint.prefix": ckpt[2],
           **FIXED_1024}
    out.update({f"schedule.{k}": v for k, v in lr.items()})
    out.update({k.replace("__", "."): v for k, v in extra.items()})
    return out


def _cos(base, warmup):
    return {"kind": "cosine_per_epoch", "base_lr": base, "warmup_epochs": warmup, "t_max": 150, "eta_min": 0.0}


# §2.3/§2.5: lr 0.02 on 1 device, 0.18 on 8 (run_distribute_train_gpu.sh --lr_init 0.18).
_BAM = dict(epochs=160, batch=128, lr=_cos(0.02, 0), wd=1e-4, no_decay=SUFFIX, smoothing=0.1,
            off="eps_over_c_minus_1", amp=("O3", "O3"), seed=1, lr_scaling=("published", 1, ("1:0.02", "8:0.18")))
_GE = dict(batch=256, wd=1e-4, no_decay=SUBSTR, smoothing=0.1, off="eps_over_c", amp=("O2", "O2"), seed=1,
           ckpt=(10, 5, "GENet"))  # README save_checkpoint_epochs 10
_GE_LINEAR = {"kind": "linear", "lr_init": 0.8, "lr_end": 0.0}

# The facts sheet, §1.3, §2.3, §3.3, §4.3 and §5.3, as flat recipe keys.
SPEC = {
    "zfnet": _spec(150, 256, _cos(0.035, 5), 1e-4, SUFFIX, 0.0, "none", ("O2", "O2"), 44,
                   (0, 1, "checkpoint_zfnet"), model_kwargs__drop_rate=0.35, eval__best="top1_and_top5"),
    "sppnet": _spec(160, 256, _cos(0.01, 0), 1e-4, SUFFIX, 0.0, "none", ("O2", "O2"), 44,
                    (0, 1, "checkpoint_sppnet"), model_kwargs__drop_rate=0.41, eval__batch_size=256),
    # §1.3: the README's warm-up of 0 epochs (config.py has 2).
    "sppnet_mult": _spec(160, 128, _cos(0.01, 0), 1e-4, SUFFIX, 0.0, "none", ("O2", "O2"), 44,
                         (0, 1, "checkpoint_sppnet"), model_kwargs__drop_rate=0.42, multi_size=(224, 180),
                         eval__batch_size=256, eval__best="top1_and_top5"),
    "resnet50_bam": _spec(**_BAM, ckpt=(2, 25, "train_resnet50_bam_imagenet")),
    "resnet50": _spec(**_BAM, ckpt=(2, 25, "train_resnet50_imagenet")),
    "googlenet_cifar10": {
        **_spec(125, 128, {"kind": "step_fraction", "base_lr": 0.1, "fractions": (0.3, 0.6, 0.8), "factor": 0.1},
                5e-4, ("none", ()), 0.0, "none", ("O2", "O2"), 1, (5, 10, "train_googlenet_cifar10")),
        "loss_scale.kind": "none", "loss_scale.value": 1, "num_classes": 10, "dataset": "cifar10"},
    "googlenet_imagenet": _spec(300, 256, {"kind": "multistep", "base_lr": 0.1, "gamma": 0.3,
                                           "milestones": (70, 140, 210, 280), "warmup_epochs": 0},
                                1e-4, SUFFIX, 0.1, "eps_over_c_minus_1", ("O2", "O2"), 1,
                                (5, 10, "train_googlenet_imagenet")),
    "genet_res50_theta_plus": _spec(150, lr=_GE_LINEAR, **_GE),
    "genet_res50_theta": _spec(150, lr=_GE_LINEAR, **_GE),
    "genet_res50_theta_minus": _spec(220, lr={"kind": "genet_cosine", "lr_init": 0.8}, **_GE),
    "inception_v4": _spec(250, 128, {"kind": "warmup_cosine", "lr_init": 4e-5, "lr_max": 0.4, "lr_end": 4e-6,
                                     "warmup_epochs": 1}, 4e-5, SUBSTR, 0.0, "none", ("O3", "O0"), 1,
                          (10, 10, "inceptionV4-train-rank{rank}"), optim__name="rmsprop", optim__decay=0.9,
                          optim__epsilon=1.0, optim__momentum=0.9),
}


def test_recipe_names():
    assert list_recipes() == sorted(SPEC)


def test_models_and_recipes_cover_each_other():
    recipes = [load_recipe(name) for name in list_recipes()]
    assert {r.model for r in recipes} == set(list_models("mindspore")) == set(MODELS)


@pytest.mark.parametrize("name", sorted(SPEC))
def test_recipe_matches_facts(name):
    recipe = load_recipe(name)
    flat = to_flat_dict(recipe)
    assert recipe.name == name
    expected = {"num_classes": 1000, "dataset": "imagenet", "optim.momentum": 0.9, "eval.drop_remainder": True,
                **SPEC[name]}
    assert {k: flat[k] for k in expected} == expected
    assert flat["optim.name"] == expected.get("optim.name", "momentum")
    assert all(not dataclasses.is_dataclass(v) for v in flat.values())


def test_sppnet_recipes_train_one_model_with_their_own_dropout():
    single, mult = load_recipe("sppnet"), load_recipe("sppnet_mult")
    assert single.model == mult.model == "sppnet" and single.multi_size == ()
    assert dict(mult.model_kwargs) == {"drop_rate": 0.42}
    with pytest.raises(TypeError):
        mult.model_kwargs["drop_rate"] = 0.5  # type: ignore[index]


def test_overrides_parse_to_field_types():
    recipe = load_recipe("googlenet_imagenet", {
        "optim.weight_decay": "0", "schedule.base_lr": "0.05", "epochs": "3", "schedule.milestones": "1,2",
        "loss_scale.drop_overflow_update": "true", "eval.batch_size": "8", "amp_level.ascend": "O0",
        "model_kwargs.drop_rate": "0.5",
    })
    assert recipe.optim.weight_decay == 0.0 and isinstance(recipe.optim.weight_decay, float)
    assert (recipe.schedule.base_lr, recipe.epochs, recipe.schedule.milestones) == (0.05, 3, (1, 2))
    assert recipe.loss_scale.drop_overflow_update is True and recipe.eval.batch_size == 8
    assert recipe.amp_level.ascend == "O0" and recipe.model_kwargs["drop_rate"] == 0.5
    assert load_recipe("googlenet_imagenet").epochs == 300  # overrides never leak into the bundled file


def test_schedule_kind_override_starts_a_new_section():
    recipe = load_recipe("zfnet", {"schedule.kind": "linear", "schedule.lr_init": "0.1"})
    assert to_flat_dict(recipe)["schedule.kind"] == "linear" and recipe.schedule.lr_end == 0.0
    with pytest.raises(ConfigError, match="^recipe.schedule.lr_init: required$"):
        load_recipe("zfnet", {"schedule.kind": "linear"})


@pytest.mark.parametrize("overrides, message", [
    ({"optim.foo": "1"}, "recipe.optim.foo: unknown key; known: name, momentum, weight_decay"),
    ({"foo": "1"}, "recipe.foo: unknown key; known: name, model"),
    ({"optim.weight_decay": "-1"}, "recipe.optim.weight_decay: must be >= 0"),
    ({"epochs": "0"}, "recipe.epochs: must be > 0"),
    ({"epochs": "many"}, "recipe.epochs: expected int, got 'many'"),
    ({"schedule.base_lr": "0"}, "recipe.schedule.base_lr: must be > 0"),
    ({"schedule.lr_max": "1"}, "recipe.schedule.lr_max: unknown key; known: kind, base_lr"),
    ({"schedule.kind": "exp"}, "recipe.schedule.kind: must be one of cosine_per_epoch"),
    ({"schedule.milestones": "10,5"}, "recipe.schedule.milestones: must be strictly increasing"),
    ({"loss.off_value": "eps"}, "recipe.loss.off_value: must be one of"),
    ({"loss.label_smoothing": "0"}, "recipe.loss.off_value: must be none without label smoothing"),
    ({"optim.name": "rmsprop"}, "recipe.optim.decay: rmsprop needs a decay"),
    ({"optim": "sgd"}, "recipe.optim: is a section"),
    ({"epochs.max": "1"}, "recipe.epochs: is a value, not a section"),
    ({"model": "vgg"}, "recipe.model: unknown model 'vgg'"),
    ({"data_config": "googlenet_cifar10"}, "recipe.dataset: data config 'googlenet_cifar10' is for cifar10"),
    ({"amp_level.cpu": "O2"}, "recipe.amp_level.cpu: must be O0"),
    ({"checkpoint.keep": "0"}, "recipe.checkpoint.keep: must be >= 1"),
    ({"lr_scaling.rule": "sqrt"}, "recipe.lr_scaling.rule: must be one of fixed, linear, published"),
    ({"lr_scaling.base_world_size": "0"}, "recipe.lr_scaling.base_world_size: must be >= 1"),
    ({"lr_scaling.rule": "published"}, "recipe.lr_scaling.published: rule published needs an entry for "
                                       "base_world_size 1"),
    ({"lr_scaling.published": "1:0.1"}, "recipe.lr_scaling.published: only rule published takes"),
    ({"lr_scaling.rule": "published", "lr_scaling.published": "1:x"},
     "recipe.lr_scaling.published: entries are <world size>:<lr> (got '1:x')"),
    ({"lr_scaling.rule": "published", "lr_scaling.published": "1:0.1,8:-1"},
     "recipe.lr_scaling.published: entries are <world size >= 1>:<lr > 0> (got '8:-1')"),
])
def test_bad_overrides_name_the_dotted_key(overrides, message):
    with pytest.raises(ConfigError) as err:
        load_recipe("googlenet_imagenet", overrides)
    assert str(err.value).startswith(message)
    assert err.value.key.startswith("recipe.")


def test_load_from_path_and_unknown_names(tmp_path):
    text = recipe_path("zfnet").read_text()
    path = tmp_path / "my_zfnet.yaml"
    path.write_text(text.replace("epochs: 150", "epochs: 2"))
    recipe = load_recipe(path, {"batch_size": "4"})
    assert (recipe.name, recipe.epochs, recipe.batch_size) == ("my_zfnet", 2, 4)
    path.write_text(text + "extra_key: 1\n")
    with pytest.raises(ConfigError, match="^recipe.extra_key: unknown key"):
        load_recipe(str(path))
    path.write_text(text.replace("seed: 44", ""))
    with pytest.raises(ConfigError, match="^recipe.seed: required$"):
        load_recipe(path)
    with pytest.raises(ConfigError, match="^recipe: unknown recipe 'vgg16'; available: genet_res50_theta"):
        load_recipe("vgg16")
    with pytest.raises(ConfigError, match="not found"):
        load_recipe(tmp_path / "missing.yaml")


def test_no_decay_rules_differ_as_the_recipes_do():
    suffix, substring = NoDecayConfig(*SUFFIX), NoDecayConfig(*SUBSTR)
    names = ["fc.bias", "bn.gamma", "conv.weight", "bias_gate.weight"]
    assert [suffix.applies(n) for n in names] == [True, True, False, False]
    assert [substring.applies(n) for n in names] == [True, True, False, True]
    assert not NoDecayConfig().applies("fc.bias")
    with pytest.raises(ConfigError, match="^patterns: give patterns"):
        NoDecayConfig("suffix", ())


def test_recipe_is_frozen_and_amp_per_target():
    recipe = load_recipe("inception_v4")
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.epochs = 1  # type: ignore[misc]
    assert [recipe.amp_level.level(t) for t in ("Ascend", "GPU", "CPU")] == ["O3", "O0", "O0"]
