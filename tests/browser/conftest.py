"""Fixtures of the browser tests: the real runs of tests/runs/runkit.py (made once per session)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "runs"))  # runkit: the runs the comparison tests share
sys.path.insert(0, str(HERE))  # chromium: headless Chromium driven by Selenium


@pytest.fixture(scope="session")
def compared(stack) -> "runkit.ComparedRuns":  # noqa: F821
    import runkit

    return runkit.pipeline_runs(stack)
