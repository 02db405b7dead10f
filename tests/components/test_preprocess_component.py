"""The preprocess component compiles with the real KFP compiler into the `mindzoo preprocess` command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.control

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `components` is a top-level folder of the repository, not an installed package
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    from kfp import compiler

    from components.preprocess.component import preprocess

    path = tmp_path_factory.mktemp("kfp") / "preprocess.yaml"
    compiler.Compiler().compile(preprocess, str(path))
    return yaml.safe_load(path.read_text())


def _container(spec):
    return spec["deploymentSpec"]["executors"]["exec-preprocess"]["container"]


def test_runs_the_cli_in_the_runtime_image(spec):
    from components import images

    container = _container(spec)
    assert container["image"] == images.CPU
    assert container["command"] == ["mindzoo", "preprocess"]
    args = container["args"]
    assert args[:2] == ["--source", "{{$.inputs.parameters['source']}}"]
    assert args[-2:] == ["--executor-input", "{{$}}"]  # the step writes the executor output itself


def test_optional_inputs_become_flags_only_when_present(spec):
    from mindzoo.config import PreprocessConfig
    from mindzoo.configkit import iter_flags

    cli_flags = {f.flag for f in iter_flags(PreprocessConfig)}
    params = spec["components"]["comp-preprocess"]["inputDefinitions"]["parameters"]
    optional = sorted(name for name, p in params.items() if p.get("isOptional"))
    assert "source" not in optional and len(optional) == len(params) - 1
    present = [json.loads(a)["IfPresent"] for a in _container(spec)["args"] if a.startswith('{"IfPresent"')]
    assert sorted(p["InputName"] for p in present) == optional
    for p in present:
        flag, value = p["Then"]
        assert flag == "--" + p["InputName"].replace("_", "-") and flag in cli_flags
        assert value == f"{{{{$.inputs.parameters['{p['InputName']}']}}}}"


def test_outputs_are_a_dataset_and_a_markdown_report(spec):
    outputs = spec["components"]["comp-preprocess"]["outputDefinitions"]["artifacts"]
    assert outputs["dataset"]["artifactType"]["schemaTitle"] == "system.Dataset"
    assert outputs["report"]["artifactType"]["schemaTitle"] == "system.Markdown"
