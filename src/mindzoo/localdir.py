"""Replace a local folder with another in one step, so a reader (or a kill) never sees a mix.

``replace_dir(new, target)`` moves the finished folder ``new`` to ``target``.
Linux swaps two directories atomically with ``renameat2(RENAME_EXCHANGE)``;
where that call is missing (other systems, old kernels, some filesystems) the
old folder is renamed aside first, which leaves a window with no ``target``
but still never a folder holding files of both versions.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
from pathlib import Path

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def staging_for(target: Path) -> Path:
    """A fresh private folder next to ``target`` (same filesystem, so the swap is a rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = target.parent / f".{target.name}.new-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    return folder


def replace_dir(new: Path, target: Path) -> None:
    """Make ``new`` be ``target``; the previous ``target`` (if any) is removed afterwards."""
    if not target.exists() and not target.is_symlink():
        os.rename(new, target)
        return
    if target.is_dir() and not target.is_symlink() and _exchange(new, target):
        shutil.rmtree(new)  # now the previous version
        return
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    shutil.rmtree(old, ignore_errors=True)
    os.rename(target, old)
    os.rename(new, target)
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old)
    else:
        old.unlink()


def _exchange(a: Path, b: Path) -> bool:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0
