"""Fixtures of the run-comparison tests (the runs themselves are made by runkit.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def compared(stack) -> "runkit.ComparedRuns":  # noqa: F821
    import runkit

    return runkit.pipeline_runs(stack)
