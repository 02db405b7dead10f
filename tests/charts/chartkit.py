"""Helpers of the chart tests: render charts/mindzoo with the real Helm (built from
Go source by ``make tools``) and assert on the parsed manifests; no cluster needed.

:class:`Chart` (the ``chart`` fixture): ``chart.template(values, *ci_files)`` returns
the rendered objects (test hooks included), ``chart.template_error(...)`` the error
of a render that must fail, ``chart.helm(...)`` runs any Helm command. Only the
standard library is imported at module level.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "mindzoo"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))


def helm_path() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mindzoo"
    return Path(os.environ.get("MINDZOO_CACHE_DIR", default)) / "bin" / "helm"


@dataclass(frozen=True)
class Chart:
    helm_bin: Path
    home: Path
    path: Path = CHART

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {**os.environ, "HELM_CACHE_HOME": str(self.home / "cache"), "HELM_CONFIG_HOME": str(self.home / "config"),
               "HELM_DATA_HOME": str(self.home / "data")}
        proc = subprocess.run([str(self.helm_bin), *args], capture_output=True, text=True, timeout=120, env=env)
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def _template_args(self, values: dict[str, Any] | None, files: tuple[Path | str, ...], release: str,
                       namespace: str, api_versions: tuple[str, ...] = ()) -> list[str]:
        args = ["template", release, str(self.path), "--namespace", namespace]
        for api in api_versions:  # what `.Capabilities.APIVersions.Has` sees (a cluster's CRDs)
            args += ["--api-versions", api]
        for file in files:
            args += ["-f", str(CHART / "ci" / file) if isinstance(file, str) else str(file)]
        for key, value in _flatten(values or {}):
            args += ["--set-json", f"{key}={json.dumps(value)}"]
        return args

    def template(self, values: dict[str, Any] | None = None, *files: Path | str, release: str = "rel",
                 namespace: str = "ml", api_versions: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """Render with ``helm template`` (test hooks included) and parse every document."""
        import yaml

        out = self.helm(*self._template_args(values, files, release, namespace, api_versions)).stdout
        return [doc for doc in yaml.safe_load_all(out) if doc]

    def template_error(self, values: dict[str, Any] | None = None, *files: Path | str) -> str:
        """Render that must fail: return Helm's error text."""
        proc = self.helm(*self._template_args(values, files, "rel", "ml"), check=False)
        assert proc.returncode != 0, f"helm template unexpectedly succeeded with {values}"
        return proc.stderr


def _flatten(values: dict[str, Any], prefix: str = ""):
    """{"a": {"b": 1}} -> ("a.b", 1); lists and empty dicts are set whole."""
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _flatten(value, path + ".")
        else:
            yield path, value


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]


def one(docs: list[dict[str, Any]], kind: str, name_suffix: str = "") -> dict[str, Any]:
    """The single object of ``kind`` whose name ends with ``name_suffix``."""
    found = [d for d in by_kind(docs, kind) if d["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, f"expected one {kind} named *{name_suffix}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


# ------------------------------------------------------------ values documentation

@dataclass(frozen=True)
class ValueDoc:
    key: str          # dotted path
    default: Any      # parsed default
    description: str  # the `# --` comment; "" when undocumented


def values_docs(path: Path = CHART / "values.yaml") -> list[ValueDoc]:
    """helm-docs semantics: a key documented with ``# --`` is one entry (its whole
    value is the default, its children are not listed); an undocumented mapping
    is a namespace whose children must be documented; any other undocumented
    key is returned with an empty description (a test turns that into a failure)."""
    import yaml

    values = yaml.safe_load(path.read_text())
    docs: list[ValueDoc] = []
    stack: list[tuple[int, str, bool]] = []  # (indent, key, documented)
    pending: list[str] = []
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if stripped.startswith("# --"):
            pending = [stripped[4:].strip()]
            continue
        if stripped.startswith("#") and pending:
            pending.append(stripped.lstrip("#").strip())
            continue
        if not stripped or stripped.startswith("#") or stripped.startswith("- "):
            continue
        indent = len(raw) - len(raw.lstrip())
        key = stripped.split(":", 1)[0].strip().strip('"')
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if any(documented for _, _, documented in stack):  # inside a documented value
            pending = []
            continue
        dotted = ".".join([k for _, k, _ in stack] + [key])
        default = _lookup(values, dotted)
        description = " ".join(pending)
        pending = []
        if description or not (isinstance(default, dict) and default):
            docs.append(ValueDoc(dotted, default, description))
        stack.append((indent, key, bool(description)))
    return docs


def _lookup(values: dict[str, Any], dotted: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        node = node[part]
    return node


def values_table(docs: list[ValueDoc]) -> str:
    """The Markdown table of values README.md carries (helm-docs' columns)."""
    def kind(value: Any) -> str:
        return {bool: "bool", int: "int", float: "float", str: "string", list: "list", dict: "object"}.get(
            type(value), "string")

    lines = ["| Key | Type | Default | Description |", "|-----|------|---------|-------------|"]
    for doc in docs:
        default = json.dumps(doc.default, separators=(",", ":")).replace("|", "\\|")
        lines.append(f"| {doc.key} | {kind(doc.default)} | `{default}` | {doc.description.replace('|', chr(92) + '|')} |")
    return "\n".join(lines)
