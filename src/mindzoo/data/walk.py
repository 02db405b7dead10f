"""Directory listing that follows symlinks but refuses loops, with one-line errors.

Datasets are often assembled from symlinks (a shared ImageNet copy linked into
a work folder), so links are followed; a link that leads back to one of its
own ancestors would recurse forever and is reported instead.

Operating-system junk is left out of every listing: hidden files and folders
(``.DS_Store``, AppleDouble ``._*``, ``.git``), ``Thumbs.db`` and
``desktop.ini``. Inside :func:`collect_skipped` the relative paths left out
are gathered, so the data report can count them.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from mindzoo.errors import DataError

JUNK_NAMES = frozenset({"thumbs.db", "desktop.ini"})  # Windows Explorer; macOS junk is all dotfiles
_SKIPPED: ContextVar[set[str] | None] = ContextVar("skipped", default=None)


def is_junk(name: str) -> bool:
    return name.startswith(".") or name.lower() in JUNK_NAMES


@contextmanager
def collect_skipped() -> Iterator[set[str]]:
    """Gather the relative paths of the junk entries listings leave out (folders end in ``/``)."""
    found: set[str] = set()
    token = _SKIPPED.set(found)
    try:
        yield found
    finally:
        _SKIPPED.reset(token)


def _stat(path: Path, root: Path) -> os.stat_result:
    try:
        return path.stat()
    except OSError as err:
        rel = _rel(path, root)
        if err.errno == errno.ELOOP:
            raise DataError(f"symlink loop at {rel}: it resolves to itself") from None
        if err.errno == errno.ENOENT and path.is_symlink():
            raise DataError(f"broken symlink {rel} -> {os.readlink(path)}") from None
        raise DataError(f"cannot read {rel}: {err.strerror}") from None


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix() or "."
    except ValueError:
        return str(path)


def entries(folder: Path, root: Path) -> list[tuple[Path, bool]]:
    """Sorted (path, is_dir) of ``folder``'s visible entries (junk is skipped)."""
    return [(path, stat.S_ISDIR(st.st_mode)) for path, st in _listed(folder, root)]


def _listed(folder: Path, root: Path) -> list[tuple[Path, os.stat_result]]:
    try:
        listed = os.listdir(folder)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise DataError(f"symlink loop at {_rel(folder, root)}: it resolves to itself") from None
        raise DataError(f"cannot list {_rel(folder, root)}: {err.strerror}") from None
    skipped = _SKIPPED.get()
    if skipped is not None:
        skipped.update(_rel(folder / n, root) + ("/" if (folder / n).is_dir() else "") for n in listed if is_junk(n))
    names = sorted(n for n in listed if not is_junk(n))
    return [(folder / name, _stat(folder / name, root)) for name in names]


def files_under(folder: Path, root: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """Every visible file below ``folder`` (sorted, depth first) with its stat; loops raise."""
    yield from _walk(folder, _stat(folder, root), root, ancestors=frozenset())


def _walk(folder: Path, st: os.stat_result, root: Path,
          ancestors: frozenset[tuple[int, int]]) -> Iterator[tuple[Path, os.stat_result]]:
    key = (st.st_dev, st.st_ino)
    if key in ancestors:
        raise DataError(f"symlink loop at {_rel(folder, root)}: it leads back to a folder above it")
    inside = ancestors | {key}
    for path, child in _listed(folder, root):
        if stat.S_ISDIR(child.st_mode):
            yield from _walk(path, child, root, inside)
        else:
            yield path, child
