"""Runs in MLflow: the layout every step logs to (:mod:`.layout`) and comparing runs (``mindzoo runs compare``).

:mod:`.layout` is imported by the steps in the runtime environment, so it stays
free of third-party imports; the comparison (:mod:`.compare`) runs in the
control environment through the MLflow client. The layout is documented in
``docs/mlflow.md``.
"""
