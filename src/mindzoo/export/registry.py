"""Register an export as a new version in the MLflow Model Registry.

The files are logged as artifacts of the export step's MLflow run under
``model/`` (the stack's MLflow server proxies artifacts to MinIO); the version's
source is ``runs:/<run id>/model``. The registered model is created on first use.
"""

from __future__ import annotations

from pathlib import Path

from mindzoo.errors import MindzooError


def register(uri: str, run_id: str, folder: Path, name: str, *, description: str = "",
             tags: dict[str, str] | None = None) -> str:
    """Log ``folder`` to ``runs:/<run_id>/model`` and create a version of ``name``; return its version."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        client.log_artifacts(run_id, str(folder), "model")
        try:
            client.get_registered_model(name)
        except MlflowException:
            client.create_registered_model(name, description=f"mindzoo exports of recipe {name}")
        version = client.create_model_version(name, source=f"runs:/{run_id}/model", run_id=run_id,
                                              tags=tags or {}, description=description[:5000])
    except MlflowException as err:
        raise MindzooError(f"MLflow Model Registry at {uri} refused the registration: "
                           f"{str(err).splitlines()[0][:200]}") from None
    return str(version.version)


def export_uri(model_uri: str, tracking_uri: str | None) -> str:
    """The s3:// prefix of a registered version: ``models:/<name>/<version>`` or ``models:/<name>@<alias>``.

    `mindzoo export` tags every version it registers with ``export_uri``; inference reads the
    published export (MindIR, label map, preprocessing) from there rather than from MLflow."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    ref = model_uri.removeprefix("models:/")
    name, sep, rest = ref.partition("@") if "@" in ref else ref.partition("/")
    if not (name and sep and rest):
        raise MindzooError(f"expected models:/<name>/<version> or models:/<name>@<alias> (got {model_uri!r})")
    if not tracking_uri:
        raise MindzooError(f"{model_uri} needs an MLflow tracking server (--tracking-uri or $MLFLOW_TRACKING_URI)")
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        version = client.get_model_version_by_alias(name, rest) if sep == "@" else client.get_model_version(name, rest)
    except MlflowException as err:
        raise MindzooError(f"{model_uri}: not in the Model Registry at {tracking_uri} "
                           f"({str(err).splitlines()[0][:160]})") from None
    uri = (version.tags or {}).get("export_uri", "")
    if not uri.startswith("s3://"):
        raise MindzooError(f"{model_uri} was not registered by `mindzoo export` (no export_uri tag)")
    return uri
