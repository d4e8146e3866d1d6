"""Sending one GET: signing, concurrency cap, rate limit, retries and error mapping.

Everything that can go wrong on the wire ends here as a :class:`SpotlerError`:

- 401/403 fail at once (:class:`SpotlerAuthError`); other 4xx too (404 ->
  :class:`SpotlerNotFoundError`, the rest :class:`SpotlerRequestError`).
- 408/429/5xx, timeouts, dropped connections and incomplete or undecodable (e.g. cut-off
  gzip) bodies are retried with capped exponential back-off and full jitter
  (``Retry-After`` honoured, capped by ``backoff_max``), up to ``max_attempts`` requests in
  all; then :class:`SpotlerUnavailableError`.
- A 2xx body the caller's ``parse`` cannot make sense of (it raises :class:`BodyError`) is
  fetched again a couple of times, since that is usually a truncated transfer; then
  :class:`SpotlerResponseError`.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

import httpx
import orjson

from spotler_pipeline.client.auth import OAuth1Auth
from spotler_pipeline.client.errors import (
    SpotlerAuthError,
    SpotlerNotFoundError,
    SpotlerRequestError,
    SpotlerResponseError,
    SpotlerUnavailableError,
)
from spotler_pipeline.client.settings import ClientSettings

__all__ = ["BODY_ATTEMPTS", "BodyError", "RateLimiter", "Requester"]

logger = logging.getLogger("spotler_pipeline.client")

T = TypeVar("T")

BODY_ATTEMPTS = 3
"""Requests made for one call whose 2xx bodies keep failing to parse, before giving up."""

_RETRYABLE_STATUSES = frozenset({408, 429})
_API_TEXT_LIMIT = 300


class BodyError(Exception):
    """Raised by a ``parse`` callback: the body is not what the endpoint documents."""


class RateLimiter:
    """At most ``rate`` request starts per second across all threads (evenly spaced)."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_start = 0.0

    def wait(self) -> None:
        with self._lock:
            now = self._clock()
            start = max(now, self._next_start)
            self._next_start = start + self._interval
        if start > now:
            self._sleep(start - now)


class Requester:
    """Sends signed GETs to one Spotler account; safe to share between threads."""

    def __init__(
        self,
        settings: ClientSettings,
        transport: httpx.BaseTransport | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._settings = settings
        self._sleep = sleep
        self._jitter = jitter
        self._secret = settings.consumer_secret
        n = settings.max_concurrent_requests
        self._http = httpx.Client(
            auth=OAuth1Auth(settings.consumer_key, settings.consumer_secret),
            headers={"Accept": "application/json"},
            timeout=settings.timeout,
            limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
            transport=transport,
            follow_redirects=False,
        )
        self._slots = threading.BoundedSemaphore(n)
        self._rate = (
            RateLimiter(settings.max_requests_per_second, clock, sleep)
            if settings.max_requests_per_second
            else None
        )
        self._count_lock = threading.Lock()
        self._count = 0

    @property
    def request_count(self) -> int:
        with self._count_lock:
            return self._count

    def close(self) -> None:
        self._http.close()

    def get(
        self,
        path: str,
        params: Mapping[str, str | int] | None,
        parse: Callable[[bytes], T],
    ) -> T:
        """GET ``path`` (relative to the base URL, ids already encoded) and return
        ``parse(body)``, retrying as described in the module docstring."""
        max_attempts = self._settings.max_attempts
        url = self._settings.base_url + path
        body_failures = 0
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._send(url, params)
            except (httpx.TransportError, httpx.DecodingError) as exc:
                last = f"{type(exc).__name__}: {self._scrub(str(exc)) or 'no detail'}"
                self._retry_or_raise(path, attempt, last, None, None, None)
                continue
            status = response.status_code
            if 200 <= status < 300:
                try:
                    return parse(response.content)
                except BodyError as exc:
                    body_failures += 1
                    reason = self._scrub(str(exc))
                    if body_failures >= BODY_ATTEMPTS or attempt >= max_attempts:
                        raise SpotlerResponseError(
                            f"GET {path}: {reason} (after {attempt} attempts)",
                            endpoint=path,
                            status=status,
                        ) from None
                    self._wait(path, attempt, f"unusable body: {reason}", None)
                    continue
            error_type, api_message = self._error_details(response)
            if status in (401, 403):
                raise SpotlerAuthError(
                    f"Spotler rejected the consumer key/secret (HTTP {status}"
                    f"{_detail(error_type, api_message)}) for GET {path}; check the "
                    "SPOTLER_CONSUMER_KEY and SPOTLER_CONSUMER_SECRET environment variables",
                    endpoint=path,
                    status=status,
                    error_type=error_type,
                )
            if status in _RETRYABLE_STATUSES or status >= 500:
                last = f"HTTP {status}{_detail(error_type, api_message)}"
                retry_after = _retry_after(response.headers.get("Retry-After"))
                self._retry_or_raise(path, attempt, last, status, error_type, retry_after)
                continue
            error_class = SpotlerNotFoundError if status == 404 else SpotlerRequestError
            raise error_class(
                f"GET {path} failed: HTTP {status}{_detail(error_type, api_message)}",
                endpoint=path,
                status=status,
                error_type=error_type,
            )

    def _send(self, url: str, params: Mapping[str, str | int] | None) -> httpx.Response:
        if self._rate is not None:
            self._rate.wait()
        with self._slots:
            with self._count_lock:
                self._count += 1
            # The body is read inside the slot: an incomplete body raises a TransportError
            # here, and the slot is only given back once the connection is free again.
            return self._http.get(url, params=params)

    def _retry_or_raise(
        self,
        path: str,
        attempt: int,
        last: str,
        status: int | None,
        error_type: str | None,
        retry_after: float | None,
    ) -> None:
        if attempt >= self._settings.max_attempts:
            raise SpotlerUnavailableError(
                f"GET {path} still failing after {attempt} attempts; last: {last}",
                endpoint=path,
                attempts=attempt,
                status=status,
                error_type=error_type,
            )
        self._wait(path, attempt, last, retry_after)

    def _wait(self, path: str, attempt: int, reason: str, retry_after: float | None) -> None:
        s = self._settings
        if retry_after is not None:
            delay = min(retry_after, s.backoff_max)
        else:
            delay = self._jitter() * min(s.backoff_max, s.backoff_initial * 2 ** (attempt - 1))
        logger.warning(
            "GET %s failed (%s); attempt %d of %d, retrying in %.2fs",
            path,
            reason,
            attempt,
            s.max_attempts,
            delay,
        )
        self._sleep(delay)

    def _error_details(self, response: httpx.Response) -> tuple[str | None, str | None]:
        """Spotler's ``{"errorType", "message"}``, tolerating any other body."""
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            text = response.text.strip()
            return None, self._scrub(text[:_API_TEXT_LIMIT]) or None
        if not isinstance(data, dict):
            return None, None
        error_type = data.get("errorType")
        message = data.get("message")
        return (
            self._scrub(str(error_type)) if error_type is not None else None,
            self._scrub(str(message)[:_API_TEXT_LIMIT]) if message is not None else None,
        )

    def _scrub(self, text: str) -> str:
        """Text from the network, with the consumer secret blanked should it ever echo it."""
        return text.replace(self._secret, "****") if self._secret else text


def _detail(error_type: str | None, message: str | None) -> str:
    parts = [p for p in (error_type, message) if p]
    return ": " + " - ".join(parts) if parts else ""


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
