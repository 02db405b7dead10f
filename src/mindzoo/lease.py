"""Leases: how concurrent publishes of one prefix keep off each other's uploads, and how one training run
keeps a second process with the same run id out of its folder.

S3 has no locks, so a writer announces its in-flight version with a small object
``<prefix>/.uploads/<version>`` and rewrites it while uploading; a publish's
cleanup (``Storage.gc``) leaves every version with a live lease alone.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from mindzoo.errors import MindzooError, StorageError


class RunBusy(MindzooError):
    """Another process holds the run's lease."""


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (to tell a killed writer's leftovers from a live one's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


class UploadLease:
    """``<prefix>/.uploads/<version>``: "this version is being uploaded", refreshed while it is.

    A lease is live while it is younger than ``TTL`` (the writer rewrites it every
    ``REFRESH`` seconds) and, when it was written on this host, its process still runs;
    so a killed writer's upload is collected at once by a publish on the same machine
    and after ``TTL`` by any other.
    """

    FOLDER, REFRESH, TTL = ".uploads", 30.0, 600.0

    def __init__(self, store: Any, prefix: Any, version: str) -> None:
        import threading

        self.store, self.uri = store, type(prefix)(prefix.bucket, self.key(prefix, version))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    @classmethod
    def key(cls, prefix: Any, version: str) -> str:
        return prefix.join(cls.FOLDER, version).key

    def _write(self) -> None:
        import socket

        body = {"host": socket.gethostname(), "pid": os.getpid()}
        self.store.put_bytes(json.dumps(body).encode(), self.uri, "application/json")

    def _beat(self) -> None:
        while not self._stop.wait(self.REFRESH):
            try:
                self._write()
            except StorageError:  # the upload itself will report an unreachable store
                pass

    def __enter__(self) -> UploadLease:
        self._write()
        self._thread.start()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        try:
            self.store.delete(self.uri)
        except StorageError:
            if exc_type is None:
                raise
            # the upload's own error says more; the lease goes stale after TTL

    @classmethod
    def scan(cls, store: Any, prefix: Any) -> dict[str, bool]:
        """{version: live} of every lease under ``prefix``."""
        import socket

        folder = prefix.join(cls.FOLDER)
        out, host, now = {}, socket.gethostname(), time.time()
        for obj in store.list_objects(folder):
            version = obj.key.rsplit("/", 1)[-1]
            live = now - obj.modified < cls.TTL
            if live:
                try:
                    body = json.loads(store.get_bytes(type(prefix)(prefix.bucket, obj.key)))
                    live = body.get("host") != host or pid_alive(int(body.get("pid", 0)))
                except (StorageError, ValueError, TypeError, AttributeError):
                    live = True  # unreadable or just removed: err on keeping the upload
            out[version] = live
        return out


class RunLease:
    """``<run prefix>/LEASE.json``: "this run is being trained", so two trainings of one run id never write
    into one folder.

    The holder rewrites it every ``REFRESH`` seconds. Another process may take the run over when the lease
    is older than ``TTL`` or (same host) its process is gone — a killed run is resumed at once on its own
    machine, and a retried pod on another node after ``TTL`` (the train task's retry backoff is longer).
    S3 has no compare-and-swap: a taker writes its token, waits ``SETTLE`` seconds and reads it back, so of
    two that start together the one whose write landed last goes on and the other is refused.
    """

    NAME, REFRESH, TTL, SETTLE = "LEASE.json", 15.0, 60.0, 2.0

    def __init__(self, store: Any, prefix: Any, run_id: str) -> None:
        import threading
        import uuid

        self.store, self.run_id = store, run_id
        self.uri = prefix.join(self.NAME)
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="mindzoo-run-lease", daemon=True)

    def _body(self) -> bytes:
        import socket

        return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "token": self.token,
                           "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}).encode()

    def _holder(self) -> tuple[dict[str, Any], float] | None:
        """The current lease's body and age in seconds, or None when there is none."""
        folder = type(self.uri)(self.uri.bucket, self.uri.key.rsplit("/", 1)[0])
        found = [o for o in self.store.list_objects(folder, recursive=False) if o.key == self.uri.key]
        if not found:
            return None
        try:
            body = json.loads(self.store.get_bytes(self.uri))
        except StorageError:  # removed between list and read: free
            return None
        except ValueError:
            body = {}
        return (body if isinstance(body, dict) else {}), time.time() - found[0].modified

    def _live(self, body: dict[str, Any], age: float) -> bool:
        import socket

        if age >= self.TTL:
            return False
        if body.get("host") == socket.gethostname():
            try:
                return pid_alive(int(body.get("pid", 0))) and int(body.get("pid", 0)) != os.getpid()
            except (TypeError, ValueError):
                return True
        return True

    def _refuse(self, body: dict[str, Any], age: float) -> None:
        raise RunBusy(f"run {self.run_id} is being trained by pid {body.get('pid', '?')} on {body.get('host', '?')} "
                      f"(lease {self.uri}, renewed {max(age, 0):.0f}s ago); wait for it to end or use another "
                      "--run-id")

    def acquire(self) -> RunLease:
        held = self._holder()
        if held is not None and self._live(*held):
            self._refuse(*held)
        self.store.put_bytes(self._body(), self.uri, "application/json")
        time.sleep(self.SETTLE)
        held = self._holder()
        if held is not None and held[0].get("token") != self.token:
            self._refuse(*held)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.REFRESH):
            try:
                self.store.put_bytes(self._body(), self.uri, "application/json")
            except StorageError:  # the store is down: training goes on; the lease may lapse meanwhile
                pass

    def release(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        try:
            held = self._holder()
            if held is not None and held[0].get("token") == self.token:
                self.store.delete(self.uri)
        except StorageError:
            pass  # it lapses after TTL

    def __enter__(self) -> RunLease:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
