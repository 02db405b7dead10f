"""``mindzoo locate``: a URI given as a pipeline parameter becomes the pointer artifact the next step takes.

Why a step and not ``dsl.importer``: KFP's launcher downloads an imported artifact into every pod that
consumes it (a whole dataset prefix, from a bucket KFP may hold no keys for), its importer takes object-store
URIs only (no ``models:/``), and KFP 2.17's driver cannot resolve a ``dsl.OneOf`` over an importer's output.
This step checks that the URI names something published, resolves a registered version to its export's
prefix (so a moving alias cannot change between this step and the next), and writes a mindzoo pointer
(:mod:`mindzoo.kfp_io`), which the consuming steps follow. It tracks nothing in MLflow.
"""

from __future__ import annotations

from typing import Any

from mindzoo.config import LocateConfig
from mindzoo.errors import MindzooError
from mindzoo.steps.context import StepContext, step_command

# The output artifact each kind is written to: the components' output names (components/locate), which KFP's
# backend declares beside its own (KFP 2.17 adds `executor-logs`).
OUTPUTS = {"dataset": "dataset", "checkpoint": "model", "model": "model"}


def run(cfg: LocateConfig, ctx: StepContext) -> None:
    location, meta = _resolve(cfg, ctx)
    manifest = _published(cfg, ctx, location)
    size = sum(int(f["size"]) for f in manifest.files.values())
    meta.update(version=manifest.version, files=len(manifest.files), size_bytes=size)
    ctx.say(f"{cfg.kind} {cfg.uri}" + (f" is {location}" if location != cfg.uri else "")
            + f": version {manifest.version}, {len(manifest.files)} files, {size / 1e6:.1f} MB")
    if ctx.kfp.active:
        output = OUTPUTS[cfg.kind]
        if ctx.kfp.output_artifact(output) is None:
            raise MindzooError(f"the executor input declares no output artifact {output!r} for a {cfg.kind} "
                               f"(it declares: {', '.join(ctx.kfp.outputs.get('artifacts', {})) or 'none'})")
        ctx.kfp.point(output, location, {"kind": cfg.kind, **meta})


def _resolve(cfg: LocateConfig, ctx: StepContext) -> tuple[str, dict[str, Any]]:
    """(the s3:// prefix, metadata): a registered version is resolved through the MLflow Model Registry."""
    if not cfg.uri.startswith("models:/"):
        return cfg.uri, {}
    from mindzoo.endpoints import resolve_tracking_uri
    from mindzoo.export.registry import export_uri

    return export_uri(cfg.uri, resolve_tracking_uri(ctx.tracking_cfg)), {"registered_model": cfg.uri}


def _published(cfg: LocateConfig, ctx: StepContext, location: str) -> Any:
    """The manifest published at ``location`` (what every consuming step fetches by)."""
    from mindzoo.storage import MANIFEST, S3Uri

    prefix = S3Uri.parse(location)
    manifest = ctx.storage.read_manifest(prefix)
    if manifest is not None:
        return manifest
    hint = ""
    if ctx.storage.exists(prefix.join("run.json")):  # a training run's prefix, a likely slip for its checkpoint
        hint = f"; it is a training run: its final checkpoint is {prefix.join('model')}"
    raise MindzooError(f"{location}: no {cfg.kind} published there (no {prefix.join(MANIFEST)}){hint}")


command = step_command(
    "locate", LocateConfig, run,
    help="Check that a URI names a published dataset, checkpoint or export (an s3:// prefix with its "
         "MANIFEST.json) or a registered model version (models:/<name>/<version>, models:/<name>@<alias>, "
         "resolved to its export), and write it as the pointer artifact the next pipeline step takes.",
)
