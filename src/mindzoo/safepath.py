"""Names read from an object store, checked before they become local paths.

A manifest, an object listing or a dataset's metadata is data someone else
wrote. Its relative paths, hashes and version names end up as file names under
a staging or cache folder, so each is validated first: a plain relative POSIX
path (no absolute path, ``..``, ``.``, empty component, backslash or NUL),
a lowercase hex digest, a version made of safe characters. The joined path is
then resolved and must stay inside its root, which also catches a symlink that
already sits in the folder. Every refusal is one :class:`StorageError` line
naming the object it came from.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from mindzoo.errors import StorageError

_HEX = re.compile(r"[0-9a-f]+")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_BAD_CHARS = ("\\", "\0")


def relpath(rel: object, where: str) -> str:
    """``rel`` unchanged if it is a plain relative path; else a StorageError naming ``where``."""
    if not isinstance(rel, str) or not rel:
        raise StorageError(f"{where}: unsafe path {rel!r} (empty or not a string); refusing it")
    parts = rel.split("/")
    problem = ("absolute" if rel.startswith("/") or PurePosixPath(rel).is_absolute() else
               "'..' component" if ".." in parts else
               "'.' or empty component" if any(p in ("", ".") for p in parts) else
               "backslash or NUL" if any(c in rel for c in _BAD_CHARS) else "")
    if problem:
        raise StorageError(f"{where}: unsafe path {rel!r} ({problem}); refusing it")
    return rel


def inside(root: Path, rel: object, where: str) -> Path:
    """``root / rel`` after checking ``rel``, and that it resolves inside ``root``."""
    path = root / relpath(rel, where)
    base = root.resolve()
    if not path.resolve().is_relative_to(base):
        raise StorageError(f"{where}: path {rel!r} leads outside {root}; refusing it")
    return path


def hexdigest(value: object, where: str, length: int | None = None) -> str:
    """``value`` if it is lowercase hex (of ``length`` characters when given)."""
    ok = isinstance(value, str) and bool(_HEX.fullmatch(value)) and (length is None or len(value) == length)
    if not ok:
        size = f"{length} " if length else ""
        raise StorageError(f"{where}: {value!r} is not a {size}hex digest; refusing it")
    return value  # type: ignore[return-value]


def version(value: object, where: str) -> str:
    """``value`` if it is a safe version name (letters, digits, ``._-``; no ``..``)."""
    if not isinstance(value, str) or not _VERSION.fullmatch(value) or ".." in value:
        raise StorageError(f"{where}: version {value!r} is not a safe name; refusing it")
    return value
