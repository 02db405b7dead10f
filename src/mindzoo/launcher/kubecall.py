"""Kubernetes API calls that survive a busy or restarting API server.

429 (API priority and fairness sheds load), 5xx (an API server or its etcd restarting, a load
balancer without a backend for a moment) and dropped connections are transient: the call is
repeated with exponential backoff (a 429's ``Retry-After`` is honoured). Everything else - a
403, a 404, a 409, a 422 - is an answer and goes to the caller at once. A create whose
response was lost may have happened: its repeat answers 409, which the launcher treats as
"adopt the Job that exists" (:mod:`.run`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    attempts: int = 7  # 0.5 + 1 + 2 + 4 + 8 + 8 s: rides out an API server restart
    first_s: float = 0.5
    max_s: float = 8.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        wanted = self.first_s * 2 ** attempt if retry_after is None else retry_after
        return min(max(wanted, 0.0), self.max_s)


def call(fn: Callable[..., T], *args: Any, backoff: Backoff = Backoff(), sleep: Callable[[float], None] = time.sleep,
         **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, repeated while it fails transiently, at most ``backoff.attempts`` times."""
    for attempt in range(backoff.attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - sorted by transient() below; the rest is re-raised
            if attempt == backoff.attempts - 1 or not transient(err):
                raise
            sleep(backoff.delay(attempt, _retry_after(err)))
    raise AssertionError("unreachable")  # the loop returns or raises


def transient(err: BaseException) -> bool:
    """An error worth repeating the call for: overload, a server error, a connection that broke."""
    if type(err).__name__ == "ApiException":  # kubernetes.client.rest, not imported where it is absent
        return getattr(err, "status", None) in TRANSIENT_STATUSES
    if isinstance(err, ConnectionError):  # reset, refused, aborted
        return True
    try:
        from urllib3.exceptions import HTTPError as Urllib3Error
    except ImportError:  # pragma: no cover - the kubernetes client always brings urllib3
        return False
    return isinstance(err, Urllib3Error)  # ProtocolError (reset mid-response), MaxRetryError, timeouts


def _retry_after(err: BaseException) -> float | None:
    headers = getattr(err, "headers", None) or {}
    try:
        return float(headers.get("Retry-After")) if headers.get("Retry-After") else None
    except (TypeError, ValueError):
        return None
