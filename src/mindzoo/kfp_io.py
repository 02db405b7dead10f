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

# A step's big outputs (a dataset, checkpoints, an export) live in mindzoo's object store. The KFP
# artifact that stands for one is a small pointer file naming that location: KFP's launcher copies every
# input artifact into the task pod, so an artifact whose URI *was* an ImageNet prefix would be copied into
# every consuming pod (and from a bucket KFP may have no credentials for).
POINTER_FORMAT = "mindzoo.pointer/1"
_POINTER_MAX_BYTES = 64 * 1024

# Where KFP's launcher mounts remote artifact URIs inside the container.
_MOUNTS = {"gs://": "/gcs/", "s3://": "/s3/", "minio://": "/minio/", "oci://": "/oci/"}


def uri_to_path(uri: str) -> str:
    for scheme, mount in _MOUNTS.items():
        if uri.startswith(scheme):
            return mount + uri[len(scheme):]
    return uri  # kfp.local: URIs are already local paths


def follow_pointer(value: str) -> str:
    """The location a pointer names, else ``value`` unchanged.

    ``value`` is an input artifact's URI (what the components pass): KFP's launcher has downloaded it to
    its mount path (``s3://b/k`` → ``/s3/b/k``); kfp.local's URIs are local paths already. Anything else —
    an s3:// prefix given by hand, ``models:/...``, a .ckpt — is not a pointer and comes back as it is.
    """
    local = uri_to_path(value) if value else ""
    if not local or "://" in local:
        return value
    path = Path(local).expanduser()
    try:
        if not path.is_file() or path.stat().st_size > _POINTER_MAX_BYTES:
            return value
        body = json.loads(path.read_text())
    except (OSError, ValueError):  # not a pointer: a .ckpt, a .mindir, a folder...
        return value
    if isinstance(body, dict) and body.get("format") == POINTER_FORMAT and isinstance(body.get("location"), str):
        return body["location"]
    return value


def _write_json(target: Path, body: dict[str, Any]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    with os.fdopen(fd, "w") as fh:
        json.dump(body, fh, indent=1, sort_keys=True)
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide it from a consumer running as another user
    os.replace(tmp, target)


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

    def point(self, name: str, location: str, metadata: dict[str, Any] | None = None) -> None:
        """Output artifact ``name`` stands for ``location`` (e.g. a published s3:// prefix): its file becomes a
        pointer to it and its metadata gets ``location``. Without a KFP-allocated artifact (a shell run or a
        hand-made executor input) the artifact's URI is the location itself."""
        meta = {**(metadata or {}), "location": location}
        artifact = self.output_artifact(name)
        if artifact is None or not artifact.uri:
            self.set_artifact(name, uri=location, metadata=meta)
            return
        _write_json(Path(artifact.path), {"format": POINTER_FORMAT, "location": location, "metadata": metadata or {}})
        self.set_artifact(name, metadata=meta)

    def relay(self, artifacts: dict[str, dict[str, Any]]) -> None:
        """Output artifacts another process decided (``{name: {"uri", "metadata"}}``, e.g. rank 0's result)."""
        for name, artifact in artifacts.items():
            if artifact.get("uri"):
                self.point(name, artifact["uri"], artifact.get("metadata"))
            else:
                self.set_artifact(name, metadata=artifact.get("metadata"))

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
        _write_json(target, body)
        return target
