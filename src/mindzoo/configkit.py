"""Typed, frozen config dataclasses and the CLI flags derived from them.

A step's configuration is one frozen dataclass (possibly with nested dataclass
fields). Each field carries its help text in ``metadata``; :func:`click_options`
turns the fields into click options whose defaults *are* the dataclass
defaults, and :func:`build` turns parsed flags back into the dataclass,
re-raising any validation failure with the full dotted key
(``train.optim.lr: must be > 0``). Validation lives in each dataclass's
``__post_init__`` and names keys relative to the dataclass; the dotted prefix
is added here, so a nested config does not need to know where it is used.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

import click

from mindzoo.errors import ConfigError


def option(default: Any = dataclasses.MISSING, help: str = "", *, artifact: bool = False,  # noqa: A002
           **kw: Any) -> Any:
    """A dataclass field with help text for the derived CLI flag.

    ``artifact=True``: the value may also be a KFP input artifact's file, a pointer to the
    real location (:func:`mindzoo.kfp_io.follow_pointer`); see :func:`follow_artifacts`.
    """
    metadata = {"help": help, "artifact": artifact, **kw.pop("metadata", {})}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple or a frozen dataclass for container defaults")
    return dataclasses.field(default=default, metadata=metadata, **kw)


def secret(default: str = "", help: str = "") -> Any:  # noqa: A002
    """A field that never becomes a CLI flag or a logged parameter (credentials)."""
    return dataclasses.field(default=default, repr=False, metadata={"help": help, "secret": True})


@dataclasses.dataclass(frozen=True)
class FlagSpec:
    key: str  # dotted key relative to the section, e.g. "optim.lr"
    flag: str  # "--optim-lr"
    type: Any
    default: Any
    help: str


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, getattr(__import__("types"), "UnionType", None)) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return tp, False


def iter_flags(cls: type, prefix: str = "") -> Iterator[FlagSpec]:
    """Every scalar leaf of a (nested) config dataclass, depth first."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init or f.metadata.get("secret") or f.metadata.get("cli") is False:
            continue
        tp, _ = _unwrap_optional(hints[f.name])
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(tp):
            yield from iter_flags(tp, prefix=f"{key}.")
            continue
        default = f.default if f.default is not dataclasses.MISSING else dataclasses.MISSING
        if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        flag = "--" + key.replace(".", "-").replace("_", "-")
        yield FlagSpec(key, flag, hints[f.name], default, f.metadata.get("help", ""))


def _click_type(tp: Any) -> tuple[Any, dict[str, Any]]:
    tp, _ = _unwrap_optional(tp)
    origin = typing.get_origin(tp)
    if origin is Literal:
        return click.Choice([str(a) for a in typing.get_args(tp)]), {}
    if origin is tuple:  # comma-separated on the command line; coerce() splits it
        return click.STRING, {}
    return {int: click.INT, float: click.FLOAT, str: click.STRING, bool: click.BOOL}.get(tp, click.STRING), {}


def click_options(cls: type, *, prefix: str = "", skip: tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
    """Decorate a click command with one option per config field.

    With ``prefix="storage"`` the flags become ``--storage-endpoint`` etc. and
    their values arrive as ``storage__endpoint`` keyword arguments.
    """

    def decorate(fn: Callable) -> Callable:
        for spec in reversed(list(iter_flags(cls, prefix=f"{prefix}." if prefix else ""))):
            if spec.key in skip:
                continue
            ctype, extra = _click_type(spec.type)
            param = spec.key.replace(".", "__")
            required = spec.default is dataclasses.MISSING
            if ctype is click.BOOL and not extra:
                names = [f"{spec.flag}/--no-{spec.flag[2:]}", param]
                fn = click.option(*names, default=spec.default, show_default=True, help=spec.help)(fn)
                continue
            if required:  # no default at all: click >= 8.2 takes an explicit default=None as a value
                fn = click.option(spec.flag, param, type=ctype, required=True, help=spec.help, **extra)(fn)
                continue
            default = spec.default
            if isinstance(default, tuple):
                default = ",".join(map(str, default))
            fn = click.option(spec.flag, param, type=ctype, default=default, show_default=default not in ("", None),
                              help=spec.help, **extra)(fn)
        return fn

    return decorate


def build(cls: type, values: Mapping[str, Any], section: str) -> Any:
    """Construct ``cls`` from flat values keyed ``a__b`` or ``a.b``; errors get ``section.`` keys."""
    nested: dict[str, Any] = {}
    for raw_key, value in values.items():
        parts = raw_key.replace("__", ".").split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _construct(cls, nested, section)


def _construct(cls: type, data: Mapping[str, Any], key: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}", f"unknown key; known: {', '.join(sorted(names))}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        tp, optional = _unwrap_optional(hints[name])
        if dataclasses.is_dataclass(tp) and isinstance(value, Mapping):
            kwargs[name] = _construct(tp, value, f"{key}.{name}")
        elif value is None and not optional:
            continue  # keep the dataclass default
        else:
            kwargs[name] = coerce(value, hints[name], f"{key}.{name}")
    try:
        return cls(**kwargs)
    except ConfigError as err:
        raise ConfigError(f"{key}.{err.key}", err.problem) from None


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert a CLI/YAML/override value to the field's type or raise ConfigError."""
    tp, optional = _unwrap_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(key, "must not be empty")
    origin = typing.get_origin(tp)
    if origin is Literal:
        allowed = typing.get_args(tp)
        for candidate in allowed:
            if str(candidate) == str(value):
                return candidate
        raise ConfigError(key, f"must be one of {', '.join(map(str, allowed))} (got {value!r})")
    if origin is tuple:
        items = [v for part in ([value] if isinstance(value, str) else value)
                 for v in (part.split(",") if isinstance(part, str) else [part])]
        inner = typing.get_args(tp)[0]
        return tuple(coerce(v.strip() if isinstance(v, str) else v, inner, key) for v in items if v != "")
    try:
        if tp is bool:
            return _to_bool(value)
        if tp is int and not isinstance(value, bool):
            return int(value)
        if tp is float and not isinstance(value, bool):
            return float(value)
        if tp is str:
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(key, f"expected {tp.__name__}, got {value!r}") from None
    return value


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(value)


def to_flat_dict(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """``{"optim.lr": 0.1, ...}`` of every non-secret leaf (for logging as params)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        if f.metadata.get("secret"):
            continue
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out.update(to_flat_dict(value, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = value
    return out


def follow_artifacts(cfg: Any) -> Any:
    """``cfg`` with every ``artifact=True`` field that holds a pointer file replaced by the location it names."""
    from mindzoo.kfp_io import follow_pointer

    changes = {f.name: follow_pointer(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)
               if f.metadata.get("artifact") and isinstance(getattr(cfg, f.name), str)}
    return dataclasses.replace(cfg, **changes) if changes else cfg


def check(condition: bool, key: str, problem: str) -> None:
    """Raise ``ConfigError(key, problem)`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(key, problem)
