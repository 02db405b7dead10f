"""The local stack as users drive it: `mindzoo stack up|status|down`."""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.control, pytest.mark.stack]


def test_status_json_gives_endpoints_and_masks_credentials(stack):
    out = stack.cli("stack", "status", "--json")
    info = json.loads(out.stdout)
    assert info["up"] is True
    assert info["s3_endpoint"] == f"127.0.0.1:{stack.ports['minio']}"
    assert info["mlflow_uri"] == f"http://127.0.0.1:{stack.ports['mlflow']}"
    assert info["engine"] in ("docker", "podman") and info["engine_socket"].startswith("unix://")
    assert all(svc["healthy"] for svc in info["services"].values())
    human = stack.cli("stack", "status").stdout
    for text in (out.stdout, human):
        assert stack.secret_key not in text and stack.access_key not in text


def test_up_is_idempotent(stack):
    before = {p.name: json.loads(p.read_text())["pid"] for p in (stack.state_dir / "services").glob("*.json")}
    out = stack.cli(*stack.up_args())
    assert out.stderr.count("already running") == len(before)
    after = {p.name: json.loads(p.read_text())["pid"] for p in (stack.state_dir / "services").glob("*.json")}
    assert after == before


def test_status_exits_non_zero_when_no_stack_is_up(stack, tmp_path):
    out = stack.cli("stack", "status", check=False, extra_env={"MINDZOO_STATE_DIR": str(tmp_path)})
    assert out.returncode == 1


def test_a_port_taken_by_another_program_is_a_clear_error(stack, tmp_path):
    out = stack.cli("stack", "up", "--minio-port", str(stack.ports["minio"]), check=False,
                    extra_env={"MINDZOO_STATE_DIR": str(tmp_path)})
    assert out.returncode != 0
    assert out.stderr.strip().splitlines()[-1].startswith("error: stack.minio_port:")
    assert "Traceback" not in out.stderr
