"""mindzoo.storage against the real MinIO server of the local stack."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time

import pytest

from mindzoo.config import StorageConfig
from mindzoo.errors import StorageError
from mindzoo.storage import MANIFEST, S3Uri, Storage, sha256_file

pytestmark = [pytest.mark.control, pytest.mark.stack]


def make_tree(root, files=12, size=64 * 1024):
    for i in range(files):
        path = root / f"part-{i % 3}" / f"file-{i:03d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in root.rglob("*") if p.is_file()}


def test_publish_and_fetch_a_folder_with_checksums(stack, bucket, tmp_path):
    store = Storage.connect()
    expected = make_tree(tmp_path / "src")
    prefix = S3Uri(bucket, "datasets/demo")
    manifest = store.publish(tmp_path / "src", prefix, meta={"kind": "test"})
    assert {rel: e["sha256"] for rel, e in manifest.files.items()} == expected
    fetched = store.fetch(prefix, tmp_path / "dst")
    assert fetched.version == manifest.version and fetched.meta == {"kind": "test"}
    got = {p.relative_to(tmp_path / "dst").as_posix(): sha256_file(p)
           for p in (tmp_path / "dst").rglob("*") if p.is_file() and p.name != MANIFEST}
    assert got == expected


def test_a_corrupted_object_fails_the_checksum(stack, bucket, tmp_path):
    store = Storage.connect()
    make_tree(tmp_path / "src", files=2)
    prefix = S3Uri(bucket, "c")
    manifest = store.publish(tmp_path / "src", prefix)
    victim = next(iter(manifest.files.values()))["key"]
    store.put_bytes(b"tampered", S3Uri(bucket, victim))
    with pytest.raises(StorageError, match="checksum mismatch"):
        store.fetch(prefix, tmp_path / "dst")
    assert not (tmp_path / "dst").exists()  # nothing half-downloaded is left


def test_republish_keeps_one_previous_generation_and_collects_older_ones(stack, bucket, tmp_path):
    store = Storage.connect()
    make_tree(tmp_path / "a", files=3)
    prefix = S3Uri(bucket, "p")
    first = store.publish(tmp_path / "a", prefix)
    second = store.publish(tmp_path / "a", prefix)
    assert len([k for k in store.list(prefix) if f"v-{first.version}/" in k]) == 3  # a reader may still be on it
    third = store.publish(tmp_path / "a", prefix)
    keys = store.list(prefix)
    assert not [k for k in keys if f"v-{first.version}/" in k]
    assert len([k for k in keys if f"v-{second.version}/" in k]) == 3
    assert len([k for k in keys if f"v-{third.version}/" in k]) == 3
    assert store.read_manifest(prefix).version == third.version
    sizes = {o.key: o.size for o in store.list_objects(prefix)}
    assert all(sizes[e["key"]] == e["size"] for e in third.files.values())


def _minio_pid(stack) -> int:
    return json.loads((stack.state_dir / "services" / "minio.json").read_text())["pid"]


def test_minio_killed_mid_upload_is_retried_and_nothing_half_published_shows(stack, bucket, tmp_path):
    expected = make_tree(tmp_path / "src", files=40, size=256 * 1024)
    store = Storage.connect(StorageConfig(retry_seconds=90))
    prefix = S3Uri(bucket, "killed")
    result: dict = {}

    def upload() -> None:
        try:
            result["manifest"] = store.publish(tmp_path / "src", prefix)
        except Exception as err:  # noqa: BLE001 - reported by the assertion below
            result["error"] = err

    worker = threading.Thread(target=upload)
    worker.start()
    while not [k for k in store.list(prefix) if "/v-" in k]:  # wait until the upload is under way
        time.sleep(0.05)
    os.kill(_minio_pid(stack), signal.SIGKILL)
    time.sleep(2)
    assert worker.is_alive(), "the upload should be waiting for MinIO, not finished or failed"
    stack.cli(*stack.up_args())  # restarts only what is down
    seen = store.read_manifest(prefix)  # a manifest, if one shows yet, names every file: never half a folder
    assert seen is None or set(seen.files) == set(expected)
    worker.join(timeout=120)
    assert "error" not in result, result.get("error")
    manifest = store.fetch(prefix, tmp_path / "dst")
    assert {rel: e["sha256"] for rel, e in manifest.files.items()} == expected


def test_unreachable_endpoint_gives_up_with_one_clear_error():
    store = Storage(StorageConfig(endpoint="127.0.0.1:9", access_key="a", secret_key="b", retry_seconds=1))
    with pytest.raises(StorageError, match="cannot reach object store at 127.0.0.1:9"):
        store.list(S3Uri("bucket", "x"))


def test_wrong_credentials_fail_at_once(stack, bucket):
    store = Storage(StorageConfig(endpoint=stack.s3_endpoint, access_key="nobody", secret_key="wrongwrong"))
    started = time.monotonic()
    with pytest.raises(StorageError, match="InvalidAccessKeyId"):
        store.list(S3Uri(bucket, "x"))
    assert time.monotonic() - started < 5  # not retried


def test_cli_copies_a_folder_both_ways(stack, bucket, tmp_path):
    expected = make_tree(tmp_path / "src", files=3)
    out = stack.cli("storage", "cp", str(tmp_path / "src"), f"s3://{bucket}/cli")
    assert "published 3 files" in out.stdout
    stack.cli("storage", "cp", f"s3://{bucket}/cli", str(tmp_path / "dst"))
    got = {p.relative_to(tmp_path / "dst").as_posix(): sha256_file(p)
           for p in (tmp_path / "dst").rglob("*") if p.is_file() and p.name != MANIFEST}
    assert got == expected


# -- what is read back is validated: a hostile manifest writes nothing outside the destination ------------------


def _entry(sha="0" * 64, key="k/v-1/a.bin", size=3):
    return {"key": key, "size": size, "sha256": sha}


HOSTILE_MANIFESTS = {  # name: (change to a valid manifest body, what the error says)
    "parent path": (lambda m: m["files"].update({"../escape.bin": _entry()}), "'..' component"),
    "nested parent path": (lambda m: m["files"].update({"a/../../escape.bin": _entry()}), "'..' component"),
    "absolute path": (lambda m: m["files"].update({"/tmp/escape.bin": _entry()}), "absolute"),
    "empty component": (lambda m: m["files"].update({"a//b.bin": _entry()}), "empty component"),
    "dot component": (lambda m: m["files"].update({"./a.bin": _entry()}), "'.' or empty component"),
    "empty path": (lambda m: m["files"].update({"": _entry()}), "empty or not a string"),
    "backslash": (lambda m: m["files"].update({"a\\..\\b": _entry()}), "backslash"),
    "non-hex sha256": (lambda m: m["files"].update({"x.bin": _entry(sha="z" * 64)}), "not a 64 hex digest"),
    "short sha256": (lambda m: m["files"].update({"x.bin": _entry(sha="ab")}), "not a 64 hex digest"),
    "parent object key": (lambda m: m["files"].update({"x.bin": _entry(key="../other/x")}), "object key"),
    "negative size": (lambda m: m["files"].update({"x.bin": _entry(size=-1)}), "is not a byte count"),
    "unsafe version": (lambda m: m.update(version="../../x"), "version '../../x' is not a safe name"),
    "files not a mapping": (lambda m: m.update(files=["a"]), "'files' is not a mapping"),
}


def _tree(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.mark.parametrize("case", list(HOSTILE_MANIFESTS))
def test_a_hostile_manifest_is_refused_and_nothing_is_written(stack, bucket, tmp_path, case):
    change, expected = HOSTILE_MANIFESTS[case]
    store = Storage.connect()
    make_tree(tmp_path / "src", files=2, size=16)
    prefix = S3Uri(bucket, "hostile")
    body = json.loads(store.publish(tmp_path / "src", prefix).to_json())
    change(body)
    store.put_bytes(json.dumps(body).encode(), prefix.join(MANIFEST))
    dest = tmp_path / "cache" / "deep" / "dst"
    dest.mkdir(parents=True)
    (dest / "old.txt").write_text("the previous copy")
    before = _tree(tmp_path)
    with pytest.raises(StorageError, match=f"s3://{bucket}/hostile/{MANIFEST}.*{re.escape(expected)}"):
        store.fetch(prefix, dest)
    assert _tree(tmp_path) == before  # no file written or removed, the old copy intact
    assert (dest / "old.txt").read_text() == "the previous copy"


def test_a_hostile_content_hash_never_names_a_cache_folder(stack, bucket, tmp_path):
    from mindzoo.data.cache import local_dataset

    store = Storage.connect()
    make_tree(tmp_path / "src", files=1, size=16)
    for value in ("../../outside", "/abs", "ABC", ""):
        store.publish(tmp_path / "src", S3Uri(bucket, "ds"), meta={"content_hash": value})
        with pytest.raises(StorageError, match="meta.content_hash.*is not a 64 hex digest"):
            local_dataset(f"s3://{bucket}/ds", storage=store, cache_dir=tmp_path / "cache" / "datasets")
    assert not (tmp_path / "cache").exists()  # checked before any folder is made


class _ListingOf:
    """A fake store for the pure listing logic of a plain (unpublished) s3:// source."""

    def __init__(self, keys):
        self.keys = keys

    def read_manifest(self, uri):
        return None

    def list_objects(self, uri):
        from mindzoo.storage import ObjectInfo

        return [ObjectInfo(k, 1, "e") for k in self.keys]


@pytest.mark.parametrize("key", ["raw/../x.bin", "raw//x.bin", "raw/a/./x.bin"])
def test_unsafe_object_keys_under_a_source_prefix_are_refused(key):
    from mindzoo.data.remote import list_source

    with pytest.raises(StorageError, match=re.escape(f"object s3://b/{key}: unsafe path")):
        list_source(_ListingOf(["raw/ok.bin", key]), S3Uri("b", "raw"))


# -- concurrent publishes of one prefix ------------------------------------------------------------------------------


def test_two_concurrent_publishes_both_end_complete(stack, bucket, tmp_path):
    """The slower writer pauses mid-upload while the other publishes and cleans up; neither loses files."""
    expected = make_tree(tmp_path / "src", files=6, size=4096)
    prefix = S3Uri(bucket, "race")
    uploading, release = threading.Event(), threading.Event()

    class PausingStorage(Storage):  # the real client, stopped mid-upload so the interleaving is certain
        def upload_file(self, path, uri):
            digest = super().upload_file(path, uri)
            uploading.set()
            release.wait(60)
            return digest

    slow, fast = PausingStorage(Storage.connect().cfg), Storage.connect()
    result: dict = {}
    writer = threading.Thread(target=lambda: result.update(slow=slow.publish(tmp_path / "src", prefix)))
    writer.start()
    assert uploading.wait(30)
    quick = fast.publish(tmp_path / "src", prefix)  # its cleanup runs while the slow upload is in flight
    in_flight = [k for k in fast.list(prefix) if "/v-" in k and f"v-{quick.version}/" not in k]
    assert in_flight, "the quick publish collected the other writer's in-flight upload"
    release.set()
    writer.join(60)
    for manifest in (quick, result["slow"]):  # both versions complete, whichever the manifest names now
        sizes = {o.key: o.size for o in fast.list_objects(prefix)}
        assert all(sizes.get(e["key"]) == e["size"] for e in manifest.files.values())
    fetched = fast.fetch(prefix, tmp_path / "dst")
    assert {rel: e["sha256"] for rel, e in fetched.files.items()} == expected
    assert not fast.list(prefix.join(".uploads"))  # both leases released
