"""Compiling the pipelines for tests, and the normalisation of their golden copies (tests/pipelines/golden)."""

import re
from pathlib import Path

import yaml

GOLDEN = Path(__file__).resolve().parent / "golden"


def compile_docs(name, tmp_path, **overrides):
    """The compiled YAML's documents: (pipeline spec, platform spec)."""
    from mindzoo.pipeline.compile import compile_to
    from mindzoo.pipeline.config import PipelineConfig

    path = compile_to(name, PipelineConfig(**overrides), tmp_path / f"{name}.yaml")
    spec, platform = yaml.safe_load_all(path.read_text())
    return spec, platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"], path


def normalise(text):
    """Ignore what changes without the pipeline changing: the SDK version and image tags."""
    text = re.sub(r"sdkVersion: kfp-[0-9.a-z]+", "sdkVersion: kfp-VERSION", text)
    return re.sub(r"(localhost|[a-z0-9.-]+(:[0-9]+)?)/(mindzoo-[a-z]+):[A-Za-z0-9._-]+", r"REGISTRY/\3:TAG", text)
