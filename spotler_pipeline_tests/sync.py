"""Synchronise tests on events, never on elapsed time.

``RequestGate`` holds the pipeline's API requests at a point the test chooses and lets them
go when the test says so; ``InFlight`` shows how many calls are in progress at once by
holding each round of them at a barrier. A test that waits on them is as fast as the
machine allows and no slower machine turns it red.

No tests here.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, TypeVar

import httpx

from spotler_pipeline.client import SpotlerClient
from spotler_pipeline.defs.resources import SpotlerResource

#: Longest a request waits at a gate before failing the run instead of hanging the test.
HOLD_LIMIT_SECONDS = 300.0
#: Longest a call waits at a barrier for the others of its round.
BARRIER_LIMIT_SECONDS = 60.0

_T = TypeVar("_T")


class RequestGate:
    """Holds every API request whose path matches ``pattern`` until :meth:`release`.

    ``held`` is set once a request is waiting at the gate (the run is then provably in the
    middle of fetching); ``count`` is how many requests have waited. A request still held
    after ``limit`` seconds fails with ``TimeoutError`` (a test that forgot to release).
    """

    def __init__(self, pattern: str, limit: float = HOLD_LIMIT_SECONDS) -> None:
        self._regex = re.compile(pattern)
        self._open = threading.Event()
        self._lock = threading.Lock()
        self.limit = limit
        self.held = threading.Event()
        self.count = 0

    def release(self) -> None:
        self._open.set()

    def wait_at_gate(self, path: str) -> None:
        if self._open.is_set() or not self._regex.search(path):
            return
        with self._lock:
            self.count += 1
        self.held.set()
        if not self._open.wait(self.limit):
            raise TimeoutError(f"request to {path} held for {self.limit:.0f}s, never released")

    def transport(self) -> httpx.BaseTransport:
        """A transport to the real server that passes each request through the gate."""
        return _GatedTransport(self, httpx.HTTPTransport())


class _GatedTransport(httpx.BaseTransport):
    def __init__(self, gate: RequestGate, inner: httpx.BaseTransport) -> None:
        self._gate, self._inner = gate, inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._gate.wait_at_gate(request.url.path)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def spotler_through(gate: RequestGate, **fields: Any) -> SpotlerResource:
    """A ``SpotlerResource`` (configured by ``fields``) whose clients send through ``gate``."""

    class GatedSpotlerResource(SpotlerResource):
        @contextmanager
        def get_client(self, contact_key: bytes | None = None) -> Iterator[SpotlerClient]:
            settings = replace(self.client_settings(), contact_key=contact_key)
            client = SpotlerClient(settings, gate.transport())
            try:
                yield client
            finally:
                client.close()

    return GatedSpotlerResource(**fields)


class InFlight:
    """Counts how many calls of a wrapped function are in progress at once (``peak``).

    Each call waits at a barrier until ``parties`` calls are in progress (so the number of
    calls must be a multiple of ``parties``): callers that run ``parties`` at once reach
    ``peak == parties`` however the machine schedules their threads, and callers that never
    do fail after ``limit`` seconds instead of passing slowly. Past the barrier each call
    lingers ``linger`` seconds: that is only room for a caller with no cap to show itself
    (``peak > parties``); a correct caller passes whatever the timing.
    """

    def __init__(
        self, parties: int, linger: float = 0.0, limit: float = BARRIER_LIMIT_SECONDS
    ) -> None:
        self._barrier = threading.Barrier(parties, timeout=limit)
        self._linger = linger
        self._lock = threading.Lock()
        self.current = 0
        self.peak = 0

    def __call__(self, call: Callable[..., _T]) -> Callable[..., _T]:
        def counted(*args: Any, **kwargs: Any) -> _T:
            with self._lock:
                self.current += 1
                self.peak = max(self.peak, self.current)
            try:
                self._barrier.wait()
                if self._linger:
                    time.sleep(self._linger)
                return call(*args, **kwargs)
            finally:
                with self._lock:
                    self.current -= 1

        return counted
