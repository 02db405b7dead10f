"""Bad input anywhere: one `error:` line, a non-zero exit, no traceback."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.control, pytest.mark.stack]


def assert_one_clear_error(proc, starts: str) -> None:
    assert proc.returncode != 0, proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), proc.stderr
    assert starts in lines[-1], proc.stderr
    assert "Traceback" not in proc.stderr
    assert len([line for line in lines if line.startswith("error:")]) == 1


@pytest.mark.parametrize("args, starts", [
    (["stack", "up", "--bogus"], "No such option '--bogus'"),
    (["stack", "up", "--minio-port", "0"], "stack.minio_port: must be a TCP port"),
    (["stack", "up", "--engine", "lxc"], "Invalid value for '--engine'"),
    (["storage", "ls", "s3://x", "--storage-retry-seconds", "-1"], "storage.retry_seconds: must be >= 0"),
    (["storage", "ls", "not-a-uri"], "not an s3:// URI"),
    (["nonsense"], "No such command 'nonsense'"),
    (["train"], "Missing option '--dataset'"),
    (["train", "--dataset", "s3://mindzoo/datasets/x"], "`mindzoo train` needs the runtime environment"),
    (["datasets", "make-digits", "/tmp/x"], "needs the runtime environment"),
])
def test_bad_input_without_a_stack(stack, args, starts):
    assert_one_clear_error(stack.cli(*args, check=False), starts)


def test_unreachable_minio(stack):
    proc = stack.cli("storage", "ls", "s3://mindzoo", "--storage-endpoint", "127.0.0.1:9",
                     "--storage-retry-seconds", "1", check=False)
    assert_one_clear_error(proc, "cannot reach object store at 127.0.0.1:9")


def test_wrong_credentials(stack):
    proc = stack.cli("storage", "ls", "s3://mindzoo", check=False,
                     extra_env={"AWS_ACCESS_KEY_ID": "nobody", "AWS_SECRET_ACCESS_KEY": "wrong-secret"})
    assert_one_clear_error(proc, "InvalidAccessKeyId (wrong credentials?)")
