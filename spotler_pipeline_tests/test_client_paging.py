"""Paging: offsets computed by the client, every way a result can end (and that a short page
with ``next`` is not one), repeated pages."""

from __future__ import annotations

import math

import httpx
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spotler_pipeline.client import OPEN_SCHEMA, SpotlerResponseError
from spotler_pipeline_tests.test_client_support import (
    PagedResource,
    json_response,
    make_client,
    open_rows,
    query,
    rows_of,
)

PATH = "/mailing/M1/opens"


def _opens(client):
    """The mailing's opens: the external ids of their rows, and the batches."""
    batches = list(client.mailing_open_batches("M1"))
    return [r["contact_external_id"] for r in rows_of(batches)], batches


@pytest.mark.parametrize(
    ("total", "page_size", "next_on_full", "requests"),
    [
        (0, 5, False, 1),  # empty result
        (3, 5, False, 1),  # exactly one short page
        (5, 5, False, 1),  # one full page, next absent
        (5, 5, True, 2),  # one full page, server still says "next": an empty page ends it
        (10, 5, False, 2),  # exact multiple
        (10, 5, True, 3),
        (12, 5, False, 3),  # short last page
        (12, 5, True, 3),
        (1, 1, False, 1),
        (20_001, 10_000, False, 3),  # pageSize at the API maximum
    ],
)
def test_page_boundaries(total, page_size, next_on_full, requests):
    rows = open_rows(total)
    resource = PagedResource("opens", rows, next_on_full=next_on_full)
    client, fake = make_client({PATH: resource}, page_size=page_size)
    records, batches = _opens(client)
    assert records == [r["contactIdentifier"]["externalId"] for r in rows]
    assert len(fake.requests) == requests
    assert len(batches) == requests
    assert all(b.schema == OPEN_SCHEMA for b in batches)
    assert pa.Table.from_batches(batches, OPEN_SCHEMA).column(0).to_pylist() == records
    sent = [(int(query(r)["after"]), int(query(r)["pageSize"])) for r in fake.requests]
    assert sent[:requests] == [(i * page_size, page_size) for i in range(requests)]


@pytest.mark.parametrize("empty_next", [None, ""])
def test_absent_or_empty_next_ends_a_full_page(empty_next):
    resource = PagedResource("opens", open_rows(4), empty_next=empty_next)
    client, fake = make_client({PATH: resource}, page_size=2)
    records, batches = _opens(client)
    assert len(records) == 4 and [b.num_rows for b in batches] == [2, 2]
    assert len(fake.requests) == 2


def test_next_url_is_not_followed():
    resource = PagedResource("opens", open_rows(5))
    client, fake = make_client({PATH: resource}, page_size=2)
    list(client.mailing_open_batches("M1"))
    assert {r.url.host for r in fake.requests} == {"spotler.test"}
    assert [query(r)["after"] for r in fake.requests] == ["0", "2", "4"]


def capped(rows, cap: int, array_field: str = "opens", empty_next: str | None = None):
    """A server that serves at most ``cap`` rows a page whatever ``pageSize`` asked for,
    with ``paging.next`` pointing to after + rows served while more remain."""

    def handler(request):
        q = query(request)
        after, size = int(q["after"]), int(q["pageSize"])
        page = rows[after : after + min(size, cap)]
        paging = {"after": after}
        if after + len(page) < len(rows):
            paging["next"] = f"https://elsewhere.example/next?after={after + len(page)}"
        elif empty_next is not None:
            paging["next"] = empty_next
        return json_response({array_field: page, "paging": paging})

    return handler


def _afters(fake) -> list[int]:
    return [int(query(r)["after"]) for r in fake.requests]


def test_short_page_with_next_continues():
    """A page shorter than pageSize is not the last one while ``next`` points further."""

    def handler(request):
        after = int(query(request)["after"])
        if after == 0:
            return json_response({"opens": open_rows(3), "paging": {"next": "more"}})
        return json_response({"opens": open_rows(2, after), "paging": {}})

    client, fake = make_client({PATH: handler}, page_size=5)
    got = [o["contact_external_id"] for o in rows_of(client.mailing_open_batches("M1"))]
    assert got == [f"c{i}@example.nl" for i in range(5)]
    assert _afters(fake) == [0, 3]


@pytest.mark.parametrize("cap", [1, 3, 999])
def test_server_capped_pages_are_all_read(cap):
    rows = open_rows(20)
    client, fake = make_client({PATH: capped(rows, cap)}, page_size=10)
    records, batches = _opens(client)
    assert records == [r["contactIdentifier"]["externalId"] for r in rows]
    per_page = min(cap, 10)
    sizes = [min(per_page, 20 - a) for a in range(0, 20, per_page)]
    assert [b.num_rows for b in batches] == sizes
    assert all(b.schema == OPEN_SCHEMA for b in batches)
    expected_afters = list(range(0, 20, per_page))
    assert _afters(fake) == expected_afters
    assert {int(query(r)["pageSize"]) for r in fake.requests} == {10}


def test_after_advances_by_rows_received():
    """Pages of uneven lengths: each ``after`` is the sum of the rows received before."""
    lengths = [4, 1, 7, 2, 6]
    starts = [sum(lengths[:i]) for i in range(len(lengths))]

    def handler(request):
        after = int(query(request)["after"])
        i = starts.index(after)
        paging = {"next": "x"} if i + 1 < len(lengths) else {}
        return json_response({"opens": open_rows(lengths[i], after), "paging": paging})

    client, fake = make_client({PATH: handler}, page_size=8)
    records, batches = _opens(client)
    assert records == [f"c{i}@example.nl" for i in range(sum(lengths))]
    assert [b.num_rows for b in batches] == lengths
    assert _afters(fake) == starts


@pytest.mark.parametrize("page_size", [2, 5])
def test_empty_page_ends_even_if_next_is_set(page_size):
    def handler(request):
        after = int(query(request)["after"])
        rows = open_rows(2, after) if after < 4 else []
        return json_response({"opens": rows, "paging": {"next": "always"}})

    client, fake = make_client({PATH: handler}, page_size=page_size)
    records, batches = _opens(client)
    assert len(records) == 4 and [b.num_rows for b in batches] == [2, 2, 0]
    assert _afters(fake) == [0, 2, 4]


@pytest.mark.parametrize("paging", [{}, {"next": ""}, {"next": None}, None, "absent"])
def test_absent_or_empty_next_ends_a_short_page(paging):
    body = {"opens": open_rows(3)}
    if paging != "absent":
        body["paging"] = paging
    client, fake = make_client({PATH: [json_response(body)]}, page_size=10)
    records, batches = _opens(client)
    assert len(records) == 3 and [b.num_rows for b in batches] == [3]
    assert len(fake.requests) == 1


@pytest.mark.parametrize("empty_next", [None, ""])
def test_capped_server_ends_on_absent_or_empty_next(empty_next):
    rows = open_rows(7)
    client, fake = make_client({PATH: capped(rows, 3, empty_next=empty_next)}, page_size=10)
    records, _ = _opens(client)
    assert len(records) == 7
    assert _afters(fake) == [0, 3, 6]


def test_bare_array_is_one_final_page():
    client, fake = make_client({PATH: [json_response(open_rows(7))]}, page_size=7)
    records, batches = _opens(client)
    assert len(records) == 7 and [b.num_rows for b in batches] == [7]
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    "page_size",
    [
        pytest.param(2, id="full-page"),
        # The repeat guard still holds when pages are shorter than pageSize.
        pytest.param(10, id="short-page"),
    ],
)
def test_repeated_page_is_retried_then_reported(page_size):
    def handler(request):
        return json_response({"opens": open_rows(2), "paging": {"next": "x"}})

    client, fake = make_client({PATH: handler}, page_size=page_size)
    stream = client.mailing_open_batches("M1")
    with pytest.raises(SpotlerResponseError, match=f"repeated page 1 of {PATH}") as info:
        list(stream)
    assert info.value.endpoint == PATH
    assert _afters(fake) == [0, 2, 2, 2]  # page 1, then page 2 three times


def test_repeated_page_recovers_on_retry():
    served = []

    def handler(request):
        after = int(query(request)["after"])
        served.append(after)
        # The first request for page 2 wrongly answers page 1 again.
        start = 0 if served.count(2) == 1 else after
        return json_response({"opens": open_rows(2, start), "paging": {"next": "x"}})

    client, _ = make_client({PATH: handler}, page_size=2)
    stream = client.mailing_open_batches("M1")
    pages = [batch for _, batch in zip(range(3), stream, strict=False)]
    externals = [o["contact_external_id"] for o in rows_of(pages)]
    assert externals == [f"c{i}@example.nl" for i in range(6)]


@pytest.mark.parametrize(
    "body",
    [
        {"paging": {"after": 0}},  # array field left out of an empty result
        {"opens": None, "paging": {}},
        {"data": open_rows(2)},  # a renamed array field: the only array is taken
    ],
)
def test_tolerated_page_shapes(body):
    client, _ = make_client({PATH: [json_response(body)]})
    records, batches = _opens(client)
    expected = len(body.get("data", []))
    assert len(records) == expected and sum(b.num_rows for b in batches) == expected


def test_empty_result_yields_one_zero_length_batch():
    client, _ = make_client({PATH: PagedResource("opens", [])})
    (batch,) = client.mailing_open_batches("M1")
    assert batch.num_rows == 0 and batch.schema == OPEN_SCHEMA


#: Hypothesis settings of the paging properties (the fake client is built in each example).
PAGING_PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@PAGING_PROPERTY
@given(
    total=st.integers(min_value=0, max_value=60),
    page_size=st.integers(min_value=1, max_value=15),
    next_on_full=st.booleans(),
)
def test_paging_property(total, page_size, next_on_full):
    rows = open_rows(total)
    resource = PagedResource("opens", rows, next_on_full=next_on_full)
    client, fake = make_client({PATH: resource}, page_size=page_size)
    got, batches = _opens(client)
    assert all(b.num_rows <= page_size for b in batches)
    assert got == [r["contactIdentifier"]["externalId"] for r in rows]
    full, rest = divmod(total, page_size)
    expected = full + 1 if (rest or next_on_full or total == 0) else full
    assert len(fake.requests) == expected
    assert len(fake.requests) <= math.ceil(total / page_size) + 1


@PAGING_PROPERTY
@given(
    total=st.integers(min_value=0, max_value=60),
    page_size=st.integers(min_value=1, max_value=15),
    cap=st.integers(min_value=1, max_value=20),
)
def test_capped_paging_property(total, page_size, cap):
    """Whatever the server's cap: every row once, in order, ``after`` = rows received."""
    rows = open_rows(total)
    client, fake = make_client({PATH: capped(rows, cap)}, page_size=page_size)
    got, _ = _opens(client)
    assert got == [r["contactIdentifier"]["externalId"] for r in rows]
    per_page = min(cap, page_size)
    assert _afters(fake) == (list(range(0, total, per_page)) or [0])


def test_pages_stream_lazily():
    """Nothing is fetched until iteration, and only one page per step."""
    client, fake = make_client({PATH: PagedResource("opens", open_rows(10))}, page_size=2)
    stream = client.mailing_open_batches("M1")
    assert fake.requests == []
    next(stream)
    assert len(fake.requests) == 1
    next(stream)
    assert len(fake.requests) == 2


def test_page_size_validated():
    from spotler_pipeline.client import ClientSettings

    for bad in (0, 10_001):
        with pytest.raises(ValueError, match="page_size"):
            ClientSettings("k", "s", page_size=bad)


def test_transport_error_mid_stream_is_retried():
    resource = PagedResource("opens", open_rows(6))
    calls = []

    def handler(request):
        calls.append(query(request)["after"])
        if calls.count("2") == 1 and calls[-1] == "2":
            raise httpx.ReadError("connection reset")
        return resource(request)

    client, _ = make_client({PATH: handler}, page_size=2)
    assert len(rows_of(client.mailing_open_batches("M1"))) == 6
    assert calls == ["0", "2", "2", "4"]
