"""KFP executor input/output for container components (standard library only).

A container component gets the executor input (the ``{{$}}`` placeholder) as a
JSON argument. KFP collects output artifacts — and their metadata, which the
UI shows — only if the container writes an executor output JSON to
``outputs.outputFile``. This module reads the one and writes the other, so a
step can run the same way from a shell (no executor input: nothing to write)
and inside a pipeline.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Where KFP's launcher mounts remote artifact URIs inside the container.
_MOUNTS = {"gs://": "/gcs/", "s3://": "/s3/", "minio://": "/minio/", "oci://": "/oci/"}


def uri_to_path(uri: str) -> str:
    for scheme, mount in _MOUNTS.items():
        if uri.startswith(scheme):
            return mount + uri[len(scheme):]
    return uri  # kfp.local: URIs are already local paths


@dataclass
class Artifact:
    name: str
    uri: str
    schema_title: str = "system.Artifact"
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return uri_to_path(self.uri)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "uri": self.uri, "metadata": self.metadata}


class ExecutorIO:
    """Parsed executor input plus the outputs a step declares while running."""

    def __init__(self, executor_input: dict[str, Any] | None) -> None:
        self.raw = executor_input or {}
        self.inputs = self.raw.get("inputs", {})
        self.outputs = self.raw.get("outputs", {})
        self._artifacts: dict[str, Artifact] = {}
        self._parameters: dict[str, Any] = {}

    @classmethod
    def parse(cls, text: str | None) -> ExecutorIO:
        """From the ``{{$}}`` argument: inline JSON, a path to a JSON file, or empty."""
        if not text:
            return cls(None)
        if not text.lstrip().startswith("{") and os.path.exists(text):
            text = Path(text).read_text()
        try:
            return cls(json.loads(text))
        except json.JSONDecodeError as err:
            raise ValueError(f"executor input is not JSON: {err}") from None

    @property
    def active(self) -> bool:
        """True inside a KFP task (there is an output file to write)."""
        return bool(self.outputs.get("outputFile"))

    def input_parameter(self, name: str, default: Any = None) -> Any:
        return self.inputs.get("parameterValues", {}).get(name, default)

    def input_artifact(self, name: str) -> Artifact | None:
        listed = self.inputs.get("artifacts", {}).get(name, {}).get("artifacts", [])
        if not listed:
            return None
        art = listed[0]
        return Artifact(name, art.get("uri", ""), art.get("type", {}).get("schemaTitle", "system.Artifact"),
                        dict(art.get("metadata", {})))

    def output_artifact(self, name: str) -> Artifact | None:
        """The artifact KFP allocated for output ``name`` (its URI and local path)."""
        if name in self._artifacts:
            return self._artifacts[name]
        listed = self.outputs.get("artifacts", {}).get(name, {}).get("artifacts", [])
        if not listed:
            return None
        art = listed[0]
        artifact = Artifact(name, art.get("uri", ""), art.get("type", {}).get("schemaTitle", "system.Artifact"),
                            dict(art.get("metadata", {})))
        self._artifacts[name] = artifact
        return artifact

    def set_artifact(self, name: str, *, uri: str | None = None, metadata: dict[str, Any] | None = None) -> None:
        """Record an output artifact's final URI (e.g. an s3:// prefix) and metadata."""
        artifact = self.output_artifact(name) or Artifact(name, uri or "")
        if uri:
            artifact.uri = uri
        artifact.metadata.update(metadata or {})
        self._artifacts[name] = artifact

    def set_parameter(self, name: str, value: Any) -> None:
        self._parameters[name] = value

    def write(self) -> Path | None:
        """Write the executor output (atomically); no-op outside a KFP task."""
        if not self.active:
            return None
        body: dict[str, Any] = {}
        if self._artifacts:
            body["artifacts"] = {n: {"artifacts": [a.to_json()]} for n, a in self._artifacts.items()}
        if self._parameters:
            body["parameterValues"] = self._parameters
        target = Path(self.outputs["outputFile"])
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".executor_output.")
        with os.fdopen(fd, "w") as fh:
            json.dump(body, fh)
        os.replace(tmp, target)
        return target
