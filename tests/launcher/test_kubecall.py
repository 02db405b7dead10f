"""Which API errors the launcher repeats, and how long it waits (pure logic; the fault-injecting proxy in
tests/cluster/test_launcher_faults.py puts the same calls in front of the real API server)."""

from __future__ import annotations

import pytest

from mindzoo.launcher.kubecall import Backoff, call, transient


class FakeApiException(Exception):
    """Stands in for kubernetes.client.rest.ApiException (matched by class name, as kubecall does)."""

    def __init__(self, status, headers=None):
        super().__init__(status)
        self.status, self.headers = status, headers or {}


FakeApiException.__name__ = "ApiException"


def failing(*errors):
    """A callable raising ``errors`` in turn, then returning "ok"; it counts its calls."""
    calls = []

    def fn(*args, **kwargs):
        calls.append((args, kwargs))
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return "ok"

    return fn, calls


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_overload_and_server_errors_are_transient(status):
    assert transient(FakeApiException(status))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_answers_are_not_transient(status):
    assert not transient(FakeApiException(status))


def test_dropped_connections_are_transient():
    from urllib3.exceptions import ProtocolError

    assert transient(ConnectionResetError()) and transient(ProtocolError("reset"))
    assert not transient(ValueError("bad"))


def test_transient_errors_are_repeated_with_exponential_backoff_and_retry_after():
    slept = []
    fn, calls = failing(FakeApiException(503), ConnectionResetError(), FakeApiException(429, {"Retry-After": "3"}))
    assert call(fn, "ns", body=1, sleep=slept.append) == "ok"
    assert slept == [0.5, 1.0, 3.0] and calls[-1] == (("ns",), {"body": 1})


def test_an_answer_is_raised_at_once_and_attempts_are_bounded():
    fn, calls = failing(FakeApiException(409))
    with pytest.raises(FakeApiException):
        call(fn, sleep=lambda s: None)
    assert len(calls) == 1
    fn, calls = failing(*[FakeApiException(503)] * 10)
    with pytest.raises(FakeApiException):
        call(fn, backoff=Backoff(attempts=3), sleep=lambda s: None)
    assert len(calls) == 3


def test_waits_are_capped():
    assert Backoff(first_s=1, max_s=4).delay(10) == 4 and Backoff(max_s=4).delay(0, retry_after=60) == 4
