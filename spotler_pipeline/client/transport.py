"""Sending one request: signing, concurrency cap, rate limit, retries and error mapping.

Reports are GETs; the follow-up actions' writes (``POST``/``PUT`` with a JSON body) go the
same way, with one difference: a write is only sent again when Spotler certainly did not act
on it (an answer of 408/429/5xx, or a connection that never opened). A write whose request
went out but whose answer was lost (a read timeout, a dropped connection) raises
:class:`SpotlerUncertainError` at once: sending it again could act twice.

Everything that can go wrong on the wire ends here as a :class:`SpotlerError`:

- 401/403 and other 4xx fail at once, as the typed error Spotler's ``errorType`` names
  (:func:`~spotler_pipeline.client.errors.error_for`: credentials, not found, refused), with
  a line saying what to do.
- 408/429/5xx, timeouts, dropped connections and incomplete or undecodable (e.g. cut-off
  gzip) bodies are retried with capped exponential back-off and full jitter, up to
  ``max_attempts`` requests in all; then :class:`SpotlerUnavailableError` (naming the host
  when it could not be reached at all). A ``Retry-After`` is honoured up to
  ``max_retry_after`` seconds; a server asking for longer fails the request at once, saying
  what it asked, instead of holding the run.
- A 2xx body the caller's ``parse`` cannot make sense of (it raises :class:`BodyError`) is
  fetched again a couple of times, since that is usually a truncated transfer; then
  :class:`SpotlerResponseError`.

Every path, reason and server message that goes into a log line or an exception passes
through :func:`~spotler_pipeline.client.errors.mask_personal_data` (contact ids, which are
often e-mail addresses, become ``<contact:…>`` tags) and has the consumer secret blanked.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
import orjson

from spotler_pipeline.client.auth import OAuth1Auth
from spotler_pipeline.client.errors import (
    SpotlerResponseError,
    SpotlerUnavailableError,
    SpotlerUncertainError,
    advice_for,
    contact_ids_in,
    error_for,
    mask_personal_data,
)
from spotler_pipeline.client.log_masking import masking_with, protect
from spotler_pipeline.client.settings import ClientSettings

__all__ = ["BODY_ATTEMPTS", "BodyError", "RateLimiter", "Requester"]

logger = logging.getLogger("spotler_pipeline.client")

T = TypeVar("T")

BODY_ATTEMPTS = 3
"""Requests made for one call whose 2xx bodies keep failing to parse, before giving up."""

_RETRYABLE_STATUSES = frozenset({408, 429})
_API_TEXT_LIMIT = 300
_UNREACHABLE = (httpx.ConnectError, httpx.ConnectTimeout)
_ERRNO_PREFIX = re.compile(r"^\[Errno -?\d+\]\s*")


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
    """Sends signed requests to one Spotler account; safe to share between threads."""

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
        protect(settings.consumer_key, settings.consumer_secret)
        self._sleep = sleep
        self._jitter = jitter
        self._secret = settings.consumer_secret
        self._contact_key = settings.contact_key
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
        return self.request("GET", path, params, parse)

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str | int] | None,
        parse: Callable[[bytes], T],
        *,
        body: Any = None,
        contact_ids: Sequence[str] = (),
    ) -> T:
        """``method`` ``path`` with ``body`` sent as JSON (when given), returning
        ``parse(body)`` of the 2xx answer; ``contact_ids`` (e.g. the contact named in the
        body) are masked in every log line and error, as those in the path are."""
        max_attempts = self._settings.max_attempts
        url = self._settings.base_url + path
        call = _Call(method, path, self._secret, contact_ids, self._contact_key)
        content = None if body is None else orjson.dumps(body)
        body_failures = 0
        attempt = 0
        while True:
            attempt += 1
            failure: httpx.TransportError | httpx.DecodingError | None = None
            try:
                response = self._send(method, url, params, content)
            except (httpx.TransportError, httpx.DecodingError) as exc:
                failure = exc
            if failure is not None and method != "GET" and not isinstance(failure, _UNREACHABLE):
                raise SpotlerUncertainError(
                    f"{call.label}: the request was sent but its answer was lost "
                    f"({type(failure).__name__}); Spotler may or may not have acted on it",
                    endpoint=path,
                    contact_key=self._contact_key,
                ) from None
            if failure is not None:
                # Handled outside the ``except``: the error raised at the end then carries
                # its one-line message without httpx's traceback chained to it.
                self._transport_failure(call, attempt, failure)
                continue
            status = response.status_code
            if 200 <= status < 300:
                try:
                    return parse(response.content)
                except BodyError as exc:
                    body_failures += 1
                    reason = call.clean(str(exc))
                    if body_failures >= BODY_ATTEMPTS or attempt >= max_attempts:
                        raise SpotlerResponseError(
                            f"{call.label}: {reason} (after {attempt} attempts)",
                            endpoint=path,
                            status=status,
                            contact_key=self._contact_key,
                        ) from None
                    self._wait(call, attempt, f"unusable body: {reason}", None)
                    continue
            error_type, api_message = self._error_details(response, call)
            if status in _RETRYABLE_STATUSES or status >= 500:
                last = f"HTTP {status}{_detail(error_type, api_message)}"
                retry_after = _retry_after(response.headers.get("Retry-After"))
                self._retry_or_raise(call, attempt, last, status, error_type, retry_after)
                continue
            raise error_for(
                status,
                error_type,
                f"{call.label} failed: HTTP {status}{_detail(error_type, api_message)}",
                endpoint=path,
                api_message=api_message,
                contact_key=self._contact_key,
            )

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, str | int] | None,
        content: bytes | None,
    ) -> httpx.Response:
        if self._rate is not None:
            self._rate.wait()
        with self._slots:
            with self._count_lock:
                self._count += 1
            # The body is read inside the slot: an incomplete body raises a TransportError
            # here, and the slot is only given back once the connection is free again.
            headers = None if content is None else {"Content-Type": "application/json"}
            # What httpx and oauthlib log meanwhile is masked with this client's key.
            with masking_with(self._contact_key):
                response = self._http.request(
                    method, url, params=params, content=content, headers=headers
                )
        # httpx 0.28 ties each response and its (already read and closed) body stream in a
        # reference cycle (encode/httpx#3733), so every page's body waited for Python's
        # cyclic collector: ~24 MB of 1 MB pages were still held after a 4M-row fetch.
        # Without the stream, the response and its body are freed when the caller drops it.
        response.stream = httpx.ByteStream(b"")
        return response

    def _transport_failure(
        self, call: _Call, attempt: int, exc: httpx.TransportError | httpx.DecodingError
    ) -> None:
        detail = call.clean(_ERRNO_PREFIX.sub("", str(exc))) or "no detail"
        if isinstance(exc, _UNREACHABLE) and attempt >= self._settings.max_attempts:
            raise SpotlerUnavailableError(
                f"Cannot reach Spotler at {self._settings.host} (SPOTLER_BASE_URL): {detail} "
                f"({type(exc).__name__}), {attempt} attempts; last request {call.label}",
                endpoint=call.path,
                attempts=attempt,
                contact_key=self._contact_key,
            )
        self._retry_or_raise(call, attempt, f"{type(exc).__name__}: {detail}", None, None, None)

    def _retry_or_raise(
        self,
        call: _Call,
        attempt: int,
        last: str,
        status: int | None,
        error_type: str | None,
        retry_after: float | None,
    ) -> None:
        limit = self._settings.max_retry_after
        if retry_after is not None and retry_after > limit:
            raise SpotlerUnavailableError(
                f"{call.label} failed ({last}) and Spotler asked to retry after "
                f"{retry_after:.0f} s (Retry-After), longer than the configured maximum of "
                f"{limit:.0f} s (max_retry_after); not waiting that long",
                endpoint=call.path,
                attempts=attempt,
                status=status,
                error_type=error_type,
                contact_key=self._contact_key,
            )
        if attempt >= self._settings.max_attempts:
            advice = advice_for(error_type)
            raise SpotlerUnavailableError(
                f"{call.label} still failing after {attempt} attempts; last: {last}"
                + (f"; {advice}" if advice else ""),
                endpoint=call.path,
                attempts=attempt,
                status=status,
                error_type=error_type,
                contact_key=self._contact_key,
            )
        self._wait(call, attempt, last, retry_after)

    def _wait(self, call: _Call, attempt: int, reason: str, retry_after: float | None) -> None:
        s = self._settings
        if retry_after is not None:
            delay = retry_after  # at most max_retry_after: checked by the caller
        else:
            delay = self._jitter() * min(s.backoff_max, s.backoff_initial * 2 ** (attempt - 1))
        logger.warning(
            "%s failed (%s); attempt %d of %d, retrying in %.2fs",
            call.label,
            reason,
            attempt,
            s.max_attempts,
            delay,
        )
        self._sleep(delay)

    def _error_details(
        self, response: httpx.Response, call: _Call
    ) -> tuple[str | None, str | None]:
        """Spotler's ``{"errorType", "message"}``, tolerating any other body."""
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return None, call.clip(response.text.strip()) or None
        if not isinstance(data, dict):
            return None, None
        error_type = data.get("errorType")
        message = data.get("message")
        return (
            call.clean(str(error_type)) if error_type is not None else None,
            call.clip(str(message)) if message is not None else None,
        )


class _Call:
    """One request: its path as sent, and as logs and errors may show it."""

    def __init__(
        self,
        method: str,
        path: str,
        secret: str,
        contact_ids: Sequence[str] = (),
        contact_key: bytes | None = None,
    ) -> None:
        self.path = path
        self._secret = secret
        self._contact_key = contact_key
        self._contact_ids = [*contact_ids_in(path), *contact_ids]
        self.shown = mask_personal_data(path, self._contact_ids, contact_key)
        self.label = f"{method} {self.shown}"

    def clean(self, text: str) -> str:
        """Text from the network made fit for a log line or an exception: the consumer
        secret blanked (should the server ever echo it) and contact ids masked."""
        if self._secret:
            text = text.replace(self._secret, "****")
        return mask_personal_data(text, self._contact_ids, self._contact_key)

    def clip(self, text: str) -> str:
        """:meth:`clean`, then cut to a readable length (masked first, so that a cut never
        leaves half an address unmasked)."""
        return self.clean(text[: _API_TEXT_LIMIT * 10])[:_API_TEXT_LIMIT]


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
