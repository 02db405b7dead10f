"""``mindzoo stack up|down|status``: MinIO, MLflow and a container engine on loopback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from mindzoo.config import StackConfig
from mindzoo.errors import MindzooError
from mindzoo.stack import engine, minio_server, mlflow_server, process, state

SERVICES = (minio_server.NAME, mlflow_server.NAME, engine.NAME)


def _ensure(name: str, port: int | None, cfg: StackConfig, starter: Callable[[], process.Service],
            say: Callable[[str], None]) -> process.Service:
    """Reuse a healthy service; otherwise (re)start it and wait for health."""
    current = process.load(name, state.services_dir())
    if current and current.healthy():
        say(f"{name}: already running at {current.url}")
        return current
    if current and current.alive():
        process.stop(current.pid)
    if port is not None and not process.port_free(cfg.host, port):
        raise MindzooError(f"stack.{name}_port: {cfg.host}:{port} is in use by another program; choose another port")
    say(f"{name}: starting …")
    service = starter()
    process.save(service, state.services_dir())
    process.wait_healthy(service, cfg.timeout)
    say(f"{name}: healthy at {service.url}")
    return service


def _engine(cfg: StackConfig, say: Callable[[str], None]) -> tuple[str, str]:
    if cfg.engine == "none":
        return "none", ""
    if cfg.engine in ("auto", "docker"):
        socket = engine.docker_socket()
        if socket:
            say(f"engine: using Docker at {socket}")
            return "docker", socket
        if cfg.engine == "docker":
            raise MindzooError("stack.engine: no Docker daemon answers at $DOCKER_HOST or /var/run/docker.sock")
    service = _ensure(engine.NAME, None, cfg, lambda: engine.start_podman(cfg), say)
    return "podman", service.url


def up(cfg: StackConfig, say: Callable[[str], None] = print) -> state.Endpoints:
    minio = _ensure(minio_server.NAME, cfg.minio_port, cfg, lambda: minio_server.start(cfg), say)
    s3_endpoint = minio.url.removeprefix("http://")
    minio_server.ensure_buckets(s3_endpoint, cfg.buckets)
    mlflow = _ensure(mlflow_server.NAME, cfg.mlflow_port, cfg, lambda: mlflow_server.start(cfg, minio.url), say)
    kind, socket = _engine(cfg, say)
    endpoints = state.Endpoints(
        s3_endpoint=s3_endpoint,
        s3_console=f"http://{cfg.host}:{cfg.minio_console_port}",
        mlflow_uri=mlflow.url,
        engine=kind,
        engine_socket=socket,
    )
    state.save_endpoints(endpoints)
    return endpoints


def down(say: Callable[[str], None] = print) -> None:
    for name in reversed(SERVICES):
        service = process.load(name, state.services_dir())
        if service is None:
            continue
        process.stop(service.pid)
        process.forget(name, state.services_dir())
        say(f"{name}: stopped")
    (state.root() / "stack.json").unlink(missing_ok=True)


def status() -> dict[str, Any]:
    """Endpoints and health of each service; credentials masked."""
    endpoints = state.load_endpoints()
    services = {}
    for name in SERVICES:
        service = process.load(name, state.services_dir())
        services[name] = {
            "running": bool(service and service.alive()),
            "healthy": bool(service and service.healthy()),
            "url": service.url if service else None,
            "log": service.log if service else None,
        }
    creds_file = state.root() / "credentials.json"
    access = state.credentials()["access_key"] if creds_file.exists() else ""
    return {
        "up": endpoints is not None and all(s["healthy"] for n, s in services.items() if n != engine.NAME),
        "state_dir": str(state.root()),
        **(asdict(endpoints) if endpoints else {}),
        "s3_access_key": state.mask(access) if access else None,
        "services": services,
    }
