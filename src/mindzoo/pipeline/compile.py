"""Compile the pipelines (``pipelines/*.py``) with the real KFP compiler, one IR YAML each."""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from mindzoo.errors import MindzooError
from mindzoo.pipeline.config import PipelineConfig

PIPELINES = {"train": "pipelines.train_pipeline", "infer": "pipelines.infer_pipeline"}


def repo_root() -> Path:
    """Where ``components/`` and ``pipelines/`` are: $MINDZOO_REPO, the checkout mindzoo is installed from, or cwd."""
    candidates = [Path(os.environ["MINDZOO_REPO"])] if os.environ.get("MINDZOO_REPO") else []
    candidates += [Path(__file__).resolve().parents[3], Path.cwd()]
    for root in candidates:
        if (root / "pipelines" / "train_pipeline.py").is_file() and (root / "components").is_dir():
            return root
    raise MindzooError("cannot find the pipeline definitions (pipelines/, components/): run from the mindzoo "
                       "checkout or set $MINDZOO_REPO")


def check_image_digests(environ: Any = None) -> dict[str, str]:
    """``$MINDZOO_IMAGE_DIGESTS`` as ``components/images.py`` will read it, checked (one error line when bad)."""
    from mindzoo.errors import ConfigError
    from mindzoo.runs.layout import ENV_IMAGE_DIGESTS, parse_image_digests

    env = os.environ if environ is None else environ
    key = f"${ENV_IMAGE_DIGESTS}"
    pins = parse_image_digests(env.get(ENV_IMAGE_DIGESTS, ""), key)
    unknown = sorted(set(pins) - {"cpu", "gpu", "ascend"})
    if unknown:
        raise ConfigError(key, f"unknown image {unknown[0]!r}: pin cpu, gpu or ascend (cpu=sha256:...)")
    return pins


def pipeline(name: str, cfg: PipelineConfig) -> Any:
    """The ``@dsl.pipeline`` of ``name`` built for ``cfg``."""
    check_image_digests()  # before components/images.py reads it
    root = str(repo_root())
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module(PIPELINES[name]).build(cfg)


def compile_to(name: str, cfg: PipelineConfig, target: Path) -> Path:
    """Compile one pipeline to ``target`` atomically (a failed compile leaves no file behind)."""
    from kfp import compiler

    check_image_digests()  # a bad pin is one error line, with nothing written
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".yaml")
    os.close(fd)
    try:
        compiler.Compiler().compile(pipeline(name, cfg), tmp)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would stay on the compiled file
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def compile_all(names: tuple[str, ...], cfg: PipelineConfig, output: Path) -> list[Path]:
    return [compile_to(name, cfg, output / f"{name}_pipeline.yaml") for name in names]
