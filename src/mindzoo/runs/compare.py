"""``mindzoo runs compare``: read the runs from MLflow, compare, render, optionally plot."""

from __future__ import annotations

import os
from pathlib import Path

from mindzoo.config import RunsCompareConfig, TrackingConfig
from mindzoo.errors import MindzooError, first_line
from mindzoo.runs.query import find_experiment, load_rows
from mindzoo.runs.table import compare_rows, render


def tracking_uri(cfg: TrackingConfig) -> str:
    from mindzoo.endpoints import resolve_tracking_uri

    uri = resolve_tracking_uri(cfg)
    if not uri:
        raise MindzooError("no MLflow tracking server: pass --tracking-uri, set $MLFLOW_TRACKING_URI, "
                           "or run `mindzoo stack up`")
    return uri


def compare(cfg: RunsCompareConfig, uri: str, say=lambda line: None) -> str:  # noqa: ANN001 - a callback
    """The rendered comparison; writes ``cfg.plot`` too when asked."""
    # Fail in seconds when the server is down, not after MLflow's default multi-minute retries.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    try:
        experiment = find_experiment(client, cfg.experiment, uri)
        rows = load_rows(client, experiment, cfg)
        comparison = compare_rows(experiment.name, rows)
        if cfg.plot:
            from mindzoo.runs.plot import plot_curves

            panels = plot_curves(client, rows, comparison.best, Path(cfg.plot).expanduser(),
                                 f"{experiment.name}: {len(rows)} runs")
            say(f"wrote {cfg.plot} ({', '.join(panels)})")
    except MlflowException as err:
        if "Max retries exceeded" in str(err):  # the client's wording for "nothing answers there"
            raise MindzooError(f"cannot reach MLflow at {uri}: is the server up? (`mindzoo stack status`)") from None
        raise MindzooError(f"MLflow at {uri}: {first_line(err)}") from None
    except OSError as err:  # connection refused/reset surface as OSError subclasses (requests' too)
        raise MindzooError(f"cannot reach MLflow at {uri}: {first_line(err)}") from None
    return render(comparison, cfg.format)


