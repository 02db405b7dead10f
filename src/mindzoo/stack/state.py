"""The local stack's on-disk state: credentials, endpoints and service records."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from mindzoo import paths


@dataclass(frozen=True)
class Endpoints:
    """What clients need to reach the stack (credentials live apart, 0600)."""

    s3_endpoint: str
    s3_console: str
    mlflow_uri: str
    engine: str
    engine_socket: str


def root() -> Path:
    return paths.state_dir()


def services_dir() -> Path:
    return root() / "services"


def logs_dir() -> Path:
    return root() / "logs"


def credentials() -> dict[str, str]:
    """The stack's MinIO root credentials, generated once and kept across restarts."""
    path = root() / "credentials.json"
    if path.exists():
        return json.loads(path.read_text())
    creds = {"access_key": "mindzoo-" + secrets.token_hex(4), "secret_key": secrets.token_urlsafe(24)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(creds, fh)
    path.with_suffix(".tmp").replace(path)
    return creds


def save_endpoints(endpoints: Endpoints) -> None:
    path = root() / "stack.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".tmp").write_text(json.dumps(asdict(endpoints), indent=2))
    path.with_suffix(".tmp").replace(path)


def load_endpoints() -> Endpoints | None:
    try:
        return Endpoints(**json.loads((root() / "stack.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None


def mask(secret: str) -> str:
    """Show enough of a credential to recognise it, never the whole thing."""
    return secret[:4] + "…" if len(secret) > 8 else "…"
