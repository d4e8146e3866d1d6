"""Sharing one client between threads: the in-flight cap, the rate limit, the request count."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from spotler_pipeline.client.transport import RateLimiter
from spotler_pipeline_tests.sync import InFlight
from spotler_pipeline_tests.test_client_support import (
    PagedResource,
    json_response,
    make_client,
    open_rows,
)


@pytest.mark.parametrize("cap", [1, 3])
def test_in_flight_requests_never_exceed_the_cap(cap):
    # each request is held until `cap` are in flight: the cap is reached on any machine;
    # then it lingers 10 ms, time for the other workers to get in if nothing kept them out
    in_flight = InFlight(cap, linger=0.01)
    handler = in_flight(lambda request: json_response({"sentCount": 1}))
    client, fake = make_client({"/mailing/M1/statistics": handler}, max_concurrent_requests=cap)
    with client, ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(lambda _: client.get_mailing_statistics("M1"), range(36)))
    assert all(r.sent_count == 1 for r in results)
    assert in_flight.peak == cap
    assert client.request_count == len(fake.requests) == 36


def test_streams_in_parallel_threads_are_independent():
    routes = {
        f"/mailing/M{i}/opens": PagedResource("opens", open_rows(25, i * 100)) for i in range(6)
    }
    client, _ = make_client(routes, page_size=4, max_concurrent_requests=3)

    def count(i):
        return sum(b.num_rows for b in client.mailing_open_batches(f"M{i}"))

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert list(pool.map(count, range(6))) == [25] * 6
    assert client.request_count == 6 * 7


def test_rate_limiter_spaces_request_starts():
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds):
        sleeps.append(seconds)

    limiter = RateLimiter(4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        limiter.wait()
    assert sleeps == pytest.approx([0.25, 0.5, 0.75, 1.0])
    now[0] = 10.0
    limiter.wait()
    assert len(sleeps) == 4  # idle long enough: no wait


def test_rate_limit_applies_to_the_client():
    sleeps: list[float] = []
    client, _ = make_client(
        {"/mailing/M1/statistics": [json_response({})]},
        sleeps=sleeps,
        max_requests_per_second=1000.0,
    )
    for _ in range(5):
        client.get_mailing_statistics("M1")
    assert client.request_count == 5
    assert all(0 < s <= 0.005 for s in sleeps)


def test_client_is_a_context_manager_and_exposes_its_zone():
    client, _ = make_client({}, timezone="America/New_York")
    with client as c:
        assert c.timezone.key == "America/New_York"
    assert client._requester._http.is_closed
