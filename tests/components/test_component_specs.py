"""Every component compiled with the real KFP compiler: the `mindzoo` command it runs, one real CLI flag
per optional input (passed only when set), the executor input, its artifact types, and its README.

No ``from __future__ import annotations`` here: KFP reads the pipeline function's annotations as types.
"""

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.control

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `components` is a top-level folder of the repository, not an installed package
    sys.path.insert(0, str(ROOT))

# component: (folder, CLI command path, required arguments in order, {output: type}, {artifact input: type})
COMPONENTS = {
    "preprocess": ("preprocess", ("preprocess",), ["--source", "{{$.inputs.parameters['source']}}"],
                   {"dataset": "system.Dataset", "report": "system.Markdown"}, {}),
    "train": ("train", ("train",), ["--dataset", "{{$.inputs.artifacts['dataset'].uri}}"],
              {"checkpoint": "system.Model", "metrics": "system.Metrics"}, {"dataset": "system.Dataset"}),
    "train_distributed": ("train", ("launch", "train"), ["--dataset", "{{$.inputs.artifacts['dataset'].uri}}"],
                          {"checkpoint": "system.Model", "metrics": "system.Metrics"}, {"dataset": "system.Dataset"}),
    "evaluate": ("evaluate", ("evaluate",), ["--checkpoint", "{{$.inputs.artifacts['checkpoint'].uri}}",
                                             "--dataset", "{{$.inputs.artifacts['dataset'].uri}}"],
                 {"metrics": "system.Metrics", "confusion": "system.ClassificationMetrics", "report": "system.HTML"},
                 {"checkpoint": "system.Model", "dataset": "system.Dataset"}),
    "export": ("export", ("export",), ["--checkpoint", "{{$.inputs.artifacts['checkpoint'].uri}}"],
               {"model": "system.Model"}, {"checkpoint": "system.Model"}),
    "infer310": ("infer310", ("infer",), ["--model", "{{$.inputs.artifacts['model'].uri}}",
                                          "--data", "{{$.inputs.artifacts['data'].uri}}"],
                 {"metrics": "system.Metrics", "results": "system.Artifact"},
                 {"model": "system.Model", "data": "system.Dataset"}),
    "locate_dataset": ("locate", ("locate",), ["--uri", "{{$.inputs.parameters['uri']}}", "--kind", "dataset"],
                       {"dataset": "system.Dataset"}, {}),
    "locate_model": ("locate", ("locate",), ["--uri", "{{$.inputs.parameters['uri']}}"], {"model": "system.Model"},
                     {}),
}


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    from kfp import compiler

    out = {}
    for name, (folder, *_rest) in COMPONENTS.items():
        module = __import__(f"components.{folder}.component", fromlist=[name])
        path = tmp_path_factory.mktemp("kfp") / f"{name}.yaml"
        compiler.Compiler().compile(getattr(module, name), str(path))
        out[name] = yaml.safe_load(path.read_text())
    return out


def _container(spec, name):
    return spec["deploymentSpec"]["executors"][f"exec-{name.replace('_', '-')}"]["container"]


def _component(spec, name):
    return spec["components"][f"comp-{name.replace('_', '-')}"]


def _present(args):
    return [json.loads(a)["IfPresent"] for a in args if isinstance(a, str) and a.startswith('{"IfPresent"')]


def _cli_flags(command_path):
    """The real flags of the mindzoo command the component runs."""
    from mindzoo.cli import cli

    command = cli
    for part in command_path:
        command = command.commands[part]
    return {opt for param in command.params for opt in param.opts}


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_runs_the_mindzoo_command_in_the_runtime_image_with_the_executor_input(specs, name):
    from components import images

    _, command, required, _, _ = COMPONENTS[name]
    container = _container(specs[name], name)
    assert container["image"] == images.CPU
    # `env` tags the step's MLflow run with the KFP run: KFP resolves placeholders in command lines only.
    # The launcher also learns the image its own pod runs (its documented fallback for worker pods).
    launcher = [f"MINDZOO_IMAGE_REF={images.CPU}"] if name == "train_distributed" else []
    assert container["command"] == ["env", "MINDZOO_LOCAL_PIPELINE_RUN_ID={{$.pipeline_job_uuid}}", *launcher, "mindzoo",
                                    *command]
    assert container["args"][:len(required)] == required
    assert container["args"][-2:] == ["--executor-input", "{{$}}"]  # the step writes the executor output


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_every_optional_input_is_one_real_flag_passed_only_when_present(specs, name):
    _, command, _, _, _ = COMPONENTS[name]
    flags = _cli_flags(command)
    params = _component(specs[name], name)["inputDefinitions"]["parameters"]
    optional = sorted(n for n, p in params.items() if p.get("isOptional"))
    present = _present(_container(specs[name], name)["args"])
    assert sorted(p["InputName"] for p in present) == optional
    for p in present:
        flag, value = p["Then"][:2]
        assert flag in flags, f"{name}: {p['InputName']} -> {flag} is not a flag of mindzoo {' '.join(command)}"
        assert value == f"{{{{$.inputs.parameters['{p['InputName']}']}}}}"
    for required in sorted(set(params) - set(optional)):  # required parameters are passed as they are
        args = _container(specs[name], name)["args"]
        assert f"{{{{$.inputs.parameters['{required}']}}}}" in args
        assert args[args.index(f"{{{{$.inputs.parameters['{required}']}}}}") - 1] in flags


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_artifact_types(specs, name):
    _, _, _, outputs, inputs = COMPONENTS[name]
    component = _component(specs[name], name)
    found = component["outputDefinitions"]["artifacts"]
    assert {k: v["artifactType"]["schemaTitle"] for k, v in found.items()} == outputs
    found = component["inputDefinitions"].get("artifacts", {})
    assert {k: v["artifactType"]["schemaTitle"] for k, v in found.items()} == inputs


def test_train_defaults_its_run_id_to_the_pipeline_run_so_a_retry_resumes(specs):
    """No placeholder default in the arguments (a KFP backend would pass it unresolved): the step derives it
    from the pipeline run, whichever way the run id reached it."""
    from mindzoo.runs.layout import pipeline_train_run_id

    for name in ("train", "train_distributed"):
        run_id = next(p for p in _present(_container(specs[name], name)["args"]) if p["InputName"] == "run_id")
        assert "Else" not in run_id
    assert pipeline_train_run_id({"MINDZOO_LOCAL_PIPELINE_RUN_ID": "local"}) == "local-train"
    assert pipeline_train_run_id({"MINDZOO_PIPELINE_RUN_ID": "label", "MINDZOO_LOCAL_PIPELINE_RUN_ID": "x"}) == \
        "label-train"
    assert pipeline_train_run_id({}) == ""


@pytest.mark.parametrize("folder", sorted({v[0] for v in COMPONENTS.values()}))
def test_each_readme_has_the_sections_and_lists_every_input_and_output(specs, folder):
    text = (ROOT / "components" / folder / "README.md").read_text()
    headings = re.findall(r"^## (\w+)", text, re.M)
    assert headings == ["Overview", "Inputs", "Outputs", "Image", "Example"]
    inputs = text.split("## Inputs")[1].split("## Outputs")[0]
    outputs = text.split("## Outputs")[1].split("## Image")[0]
    for name in (n for n, v in COMPONENTS.items() if v[0] == folder):
        component = _component(specs[name], name)
        names = {*component["inputDefinitions"].get("parameters", {}), *component["inputDefinitions"].get(
            "artifacts", {})}
        missing = sorted(n for n in names if f"`{n}`" not in inputs)
        assert not missing, f"components/{folder}/README.md: inputs not documented: {missing}"
        assert all(f"`{n}`" in outputs for n in component["outputDefinitions"]["artifacts"])
