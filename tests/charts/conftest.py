"""Fixtures of the chart tests (helpers in chartkit.py).

``chart`` (session scope) is a :class:`chartkit.Chart` around the real Helm built by
``make tools``. If Helm is not built, every chart test fails and says how to build
it; none is skipped. Only the standard library is imported at module level: the
runtime environment's pytest run loads this file too.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def chart(tmp_path_factory: pytest.TempPathFactory) -> "chartkit.Chart":  # noqa: F821
    import chartkit

    helm = chartkit.helm_path()
    if not os.access(helm, os.X_OK):
        pytest.fail(f"helm is not built at {helm}: run `make tools` (scripts/build-tools.sh builds it from Go source)",
                    pytrace=False)
    return chartkit.Chart(helm, tmp_path_factory.mktemp("helm-home"))
