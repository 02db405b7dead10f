"""Upload leases: how concurrent publishes of one prefix keep off each other's uploads.

S3 has no locks, so a writer announces its in-flight version with a small object
``<prefix>/.uploads/<version>`` and rewrites it while uploading; a publish's
cleanup (``Storage.gc``) leaves every version with a live lease alone.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from mindzoo.errors import StorageError


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
