"""Retries, back-off, fail-fast statuses and unusable bodies."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from spotler_pipeline.client import (
    SpotlerAuthError,
    SpotlerError,
    SpotlerNotFoundError,
    SpotlerRequestError,
    SpotlerResponseError,
    SpotlerUnavailableError,
)
from spotler_pipeline.client.transport import BODY_ATTEMPTS
from spotler_pipeline_tests.test_client_support import (
    PagedResource,
    error_response,
    json_response,
    make_client,
    open_rows,
)

PATH = "/mailing/M1/statistics"
OK = json_response({"sentCount": 10, "conversionValue": 1250})

TRANSIENT: dict[str, Callable[[], httpx.Response | Exception]] = {
    "429": lambda: error_response(429, "RATE_LIMIT"),
    "500": lambda: error_response(500, "BACKEND_EXCEPTION"),
    "502-html": lambda: httpx.Response(502, text="<html>Bad gateway</html>"),
    "503": lambda: error_response(503, "BACKEND_EXCEPTION"),
    "timeout": lambda: httpx.ReadTimeout("timed out"),
    "connect-timeout": lambda: httpx.ConnectTimeout("connect timed out"),
    "dropped": lambda: httpx.RemoteProtocolError("peer closed connection without sending body"),
    "reset": lambda: httpx.ReadError("connection reset by peer"),
    # A gzip body cut off in transfer: decoding it fails while reading.
    "bad-gzip": lambda: httpx.Response(
        200, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(b"\x1f\x8b garbage")
    ),
}


def _failing(factory, failures: int | None):
    """A handler failing ``failures`` times (``None``: always), then answering OK."""
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if failures is None or len(calls) <= failures:
            outcome = factory()
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
        return OK

    return handler


@pytest.mark.parametrize("factory", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_transient_failures_are_retried(factory):
    sleeps: list[float] = []
    client, fake = make_client({PATH: _failing(factory, 2)}, sleeps=sleeps)
    stats = client.get_mailing_statistics("M1")
    assert stats.sent_count == 10
    assert len(fake.requests) == 3 == client.request_count
    assert len(sleeps) == 2
    assert all(0 <= s <= 30 for s in sleeps)


@pytest.mark.parametrize("factory", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_persistent_failures_give_up_naming_endpoint_and_last_status(factory):
    sleeps: list[float] = []
    client, fake = make_client({PATH: _failing(factory, None)}, sleeps=sleeps, max_attempts=4)
    with pytest.raises(SpotlerUnavailableError) as info:
        client.get_mailing_statistics("M1")
    error = info.value
    assert len(fake.requests) == 4 and error.attempts == 4 and len(sleeps) == 3
    assert error.endpoint == PATH and PATH in str(error)
    failure = factory()
    if isinstance(failure, httpx.Response) and failure.status_code != 200:
        assert error.status == failure.status_code
        assert f"HTTP {failure.status_code}" in str(error)
    else:
        assert "Error" in str(error) or "Timeout" in str(error)


def test_backoff_is_capped_exponential_with_full_jitter():
    sleeps: list[float] = []
    client, _ = make_client(
        {PATH: [error_response(500, "BACKEND_EXCEPTION")]},
        sleeps=sleeps,
        max_attempts=8,
        backoff_initial=1.0,
        backoff_max=5.0,
    )
    client._requester._jitter = lambda: 1.0  # the top of each jitter range
    with pytest.raises(SpotlerUnavailableError):
        client.get_mailing_statistics("M1")
    assert sleeps == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0]


def _http_date(seconds_from_now: float) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds_from_now), usegmt=True)


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        (lambda: "7", 7.0),
        (lambda: "0", 0.0),
        (lambda: "100", 100.0),  # honoured past backoff_max, up to max_retry_after
        (lambda: _http_date(20), 20.0),
        (lambda: _http_date(-20), 0.0),
        (lambda: "not a date", None),  # unusable: ordinary back-off instead
    ],
    ids=["seconds", "zero", "beyond-backoff-max", "http-date", "http-date-past", "garbage"],
)
def test_retry_after_is_honoured(retry_after, expected):
    sleeps: list[float] = []
    limited = error_response(429, "RATE_LIMIT", **{"Retry-After": retry_after()})
    client, _ = make_client({PATH: [limited, OK]}, sleeps=sleeps)
    client.get_mailing_statistics("M1")
    if expected is None:
        assert 0 <= sleeps[0] <= 0.5  # backoff_initial
    else:
        assert sleeps == [pytest.approx(expected, abs=1.5)]


def test_retries_are_logged_at_warning(caplog):
    caplog.set_level(logging.WARNING, logger="spotler_pipeline.client")
    client, _ = make_client({PATH: [error_response(503, "BACKEND_EXCEPTION"), OK]})
    client.get_mailing_statistics("M1")
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert PATH in record.getMessage() and "attempt 1 of 6" in record.getMessage()
    assert "retrying in" in record.getMessage()


@pytest.mark.parametrize("status", [401, 403])
def test_credentials_rejected_fail_at_once(status):
    sleeps: list[float] = []
    client, fake = make_client({PATH: [error_response(status, "NOT_AUTHORIZED")]}, sleeps=sleeps)
    with pytest.raises(SpotlerAuthError) as info:
        client.get_mailing_statistics("M1")
    message = str(info.value)
    assert "consumer key/secret" in message
    assert "SPOTLER_CONSUMER_KEY" in message and "SPOTLER_CONSUMER_SECRET" in message
    assert "NOT_AUTHORIZED" in message and info.value.error_type == "NOT_AUTHORIZED"
    assert len(fake.requests) == 1 and sleeps == []


@pytest.mark.parametrize(
    ("error_type", "call"),
    [
        ("MAILING_NOTFOUND", lambda c: c.get_mailing("M1")),
        ("CONTACT_NOT_FOUND", lambda c: list(c.iter_contact_mailing_history("x@y.nl"))),
        ("FORMRESULT_NOT_FOUND", lambda c: c.get_form_result("F", "R")),
        ("CAMPAIGN_NOTFOUND", lambda c: c.list_campaign_mailings("C")),
    ],
)
def test_not_found_carries_error_type(error_type, call):
    def handler(request):
        return error_response(404, error_type, "it is not there")

    fake_routes = {p: handler for p in ("/mailing/M1", "/contact/x%40y.nl/mailings")}
    fake_routes |= {"/form/result/F/R": handler, "/campaign/C/mailing": handler}
    client, fake = make_client(fake_routes)
    with pytest.raises(SpotlerNotFoundError) as info:
        call(client)
    assert info.value.error_type == error_type
    assert info.value.status == 404
    assert "it is not there" in str(info.value)
    assert len(fake.requests) == 1


@pytest.mark.parametrize("status", [400, 405, 409, 422])
def test_other_client_errors_are_request_errors(status):
    client, fake = make_client({PATH: [error_response(status, "INVALID_PARAMS", "bad date")]})
    with pytest.raises(SpotlerRequestError) as info:
        client.get_mailing_statistics("M1")
    assert not isinstance(info.value, SpotlerNotFoundError)
    assert info.value.error_type == "INVALID_PARAMS" and info.value.endpoint == PATH
    assert len(fake.requests) == 1


BAD_BODIES = {
    "truncated": httpx.Response(200, content=b'{"sentCount": 10, "acceptedC'),
    "not-json": httpx.Response(200, content=b"<html>maintenance</html>"),
    "empty": httpx.Response(200, content=b""),
    "wrong-shape": json_response([1, 2, 3]),
    "wrong-type": json_response({"sentCount": {"a": 1}}),
}


@pytest.mark.parametrize("bad", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_unusable_body_is_fetched_again(bad):
    client, fake = make_client({PATH: [bad, OK]})
    assert client.get_mailing_statistics("M1").sent_count == 10
    assert len(fake.requests) == 2


@pytest.mark.parametrize("bad", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_persistently_unusable_body_is_a_response_error(bad):
    client, fake = make_client({PATH: [bad]})
    with pytest.raises(SpotlerResponseError) as info:
        client.get_mailing_statistics("M1")
    assert info.value.endpoint == PATH and PATH in str(info.value)
    assert len(fake.requests) == BODY_ATTEMPTS


def test_truncated_page_is_fetched_again():
    good = PagedResource("opens", open_rows(3))
    truncated = httpx.Response(200, content=good(_request()).content[:-20])
    calls = []

    def handler(request):
        calls.append(request)
        return truncated if len(calls) == 1 else good(request)

    client, _ = make_client({"/mailing/M1/opens": handler})
    rows = sum(b.num_rows for b in client.mailing_open_batches("M1"))
    assert rows == 3 and len(calls) == 2


def _request():
    return httpx.Request("GET", "https://x/mailing/M1/opens?after=0&pageSize=10000")


def test_attempts_are_bounded_by_max_attempts_for_bodies_too():
    client, fake = make_client({PATH: [BAD_BODIES["truncated"]]}, max_attempts=2)
    with pytest.raises(SpotlerResponseError):
        client.get_mailing_statistics("M1")
    assert len(fake.requests) == 2


def test_every_error_is_a_spotler_error():
    for cls in (
        SpotlerAuthError,
        SpotlerNotFoundError,
        SpotlerRequestError,
        SpotlerResponseError,
        SpotlerUnavailableError,
    ):
        assert issubclass(cls, SpotlerError)
