"""The model registry: lazy framework import, names, errors, keyword-only builders."""

import pytest

pytestmark = pytest.mark.runtime

import importlib.util  # noqa: E402
import inspect  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from mindzoo import registry  # noqa: E402
from mindzoo.archs import MODELS  # noqa: E402
from mindzoo.errors import ConfigError  # noqa: E402
from mindzoo.registry import create_model, list_models, register_model  # noqa: E402


def test_importing_registry_imports_no_framework():
    code = ("import sys, mindzoo.registry, mindzoo.archs, mindzoo.recipes, mindzoo.models\n"
            "names = mindzoo.registry.list_models()\n"
            "loaded = sorted(m for m in ('mindspore', 'torch') if m in sys.modules)\n"
            "assert not loaded, loaded\n"
            "print(len(names))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(len(MODELS))


def test_framework_neutral_catalogue_equals_mindspore_registry():
    assert list_models() == sorted(MODELS)
    assert list_models("mindspore") == sorted(MODELS)
    assert registry.is_model("sppnet", "mindspore") and not registry.is_model("vgg16")


def test_unknown_model_lists_available_names():
    with pytest.raises(ValueError) as err:
        create_model("resnet18")
    assert isinstance(err.value, ConfigError) and err.value.key == "model"
    assert str(err.value).startswith("model: unknown model 'resnet18'; available: ")
    assert ", ".join(sorted(MODELS)) in str(err.value)


def test_unknown_framework_lists_frameworks():
    with pytest.raises(ConfigError, match=r"^framework: unknown framework 'jax'; available: mindspore, torch$"):
        create_model("zfnet", framework="jax")
    with pytest.raises(ConfigError, match="unknown framework"):
        list_models("jax")


def test_torch_framework_is_lazy_and_shares_names():
    if importlib.util.find_spec("mindzoo.models.torch") is None:
        with pytest.raises(ConfigError, match="^framework: no torch models in this installation$"):
            list_models("torch")
    else:
        assert list_models("torch") == list_models()


def test_invalid_num_classes():
    with pytest.raises(ConfigError, match="^num_classes: must be a positive integer"):
        create_model("googlenet", num_classes=0)


@pytest.fixture
def scratch_registry(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_register_model_keys_by_framework_and_name(scratch_registry):
    @register_model(framework="mindspore")
    def toy_net(*, num_classes=1000, width=2):
        return ("toy", num_classes, width)

    assert create_model("toy_net", num_classes=3, width=5) == ("toy", 3, 5)
    assert "toy_net" in list_models("mindspore") and "toy_net" not in list_models()

    with pytest.raises(ValueError, match="already registered for mindspore"):
        register_model(framework="mindspore", name="toy_net")(lambda **kw: None)


def test_register_model_infers_framework_from_package():
    def builder(**kw):
        return None

    builder.__module__ = "somewhere.else"
    with pytest.raises(ValueError, match="cannot infer the framework"):
        register_model(builder)
    assert registry._framework_of("mindzoo.models.mindspore.resnet") == "mindspore"
    assert registry._framework_of("mindzoo.models.torch.resnet") == "torch"


@pytest.mark.parametrize("name", list_models("mindspore"))
def test_builders_are_keyword_only_with_data_config_defaults(name):
    builder = registry._REGISTRY[("mindspore", name)]
    params = inspect.signature(builder).parameters
    assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in params.values())
    assert params["num_classes"].default == 1000
    assert params["input_size"].default == MODELS[name].input_size
    assert builder.__doc__
