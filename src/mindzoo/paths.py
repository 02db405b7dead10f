"""Where mindzoo keeps state (running servers) and caches (built binaries).

Both live outside the repository so nothing built or generated is ever
committed; both are overridable for tests and for machines with odd layouts.
"""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """Data and logs of the local stack (``$MINDZOO_STATE_DIR``)."""
    default = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "mindzoo"
    return Path(os.environ.get("MINDZOO_STATE_DIR", default))


def cache_dir() -> Path:
    """Built tool binaries such as the MinIO server (``$MINDZOO_CACHE_DIR``)."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mindzoo"
    return Path(os.environ.get("MINDZOO_CACHE_DIR", default))


def tool(name: str) -> Path:
    """Path of a tool binary built into the cache (``make tools`` builds them)."""
    return cache_dir() / "bin" / name
