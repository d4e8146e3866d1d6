"""Dates sent in the account's zone; timestamps parsed with or without an offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from spotler_pipeline.client.timestamps import (
    TIMESTAMP_TYPE,
    format_api_datetime,
    parse_api_datetime,
    parse_timestamp_array,
)
from spotler_pipeline_tests.test_client_support import json_response, make_client, query

AMS = ZoneInfo("Europe/Amsterdam")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2024, 1, 15, 9, 30), "2024-01-15T09:30:00"),  # naive: already account time
        (datetime(2024, 1, 15, 9, 30, tzinfo=UTC), "2024-01-15T10:30:00"),  # winter, +01:00
        (datetime(2024, 7, 15, 9, 30, tzinfo=UTC), "2024-07-15T11:30:00"),  # summer, +02:00
        (datetime(2024, 3, 31, 0, 59, 59, tzinfo=UTC), "2024-03-31T01:59:59"),  # before spring
        (datetime(2024, 3, 31, 1, 0, tzinfo=UTC), "2024-03-31T03:00:00"),  # after spring
        (datetime(2024, 10, 27, 0, 30, tzinfo=UTC), "2024-10-27T02:30:00"),  # autumn, 1st 02:30
        (datetime(2024, 10, 27, 1, 30, tzinfo=UTC), "2024-10-27T02:30:00"),  # autumn, 2nd 02:30
        (datetime(2024, 1, 1, 0, 0, 0, 999_999, tzinfo=AMS), "2024-01-01T00:00:00"),
        (datetime(2024, 6, 1, 12, tzinfo=timezone(timedelta(hours=-5))), "2024-06-01T19:00:00"),
    ],
)
def test_format_in_account_zone(value, expected):
    assert format_api_datetime(value, AMS) == expected


def test_date_parameters_are_sent_in_account_zone():
    client, fake = make_client({"/mailing": [json_response([])]})
    client.list_mailings(
        datetime(2024, 3, 30, 23, tzinfo=UTC), datetime(2024, 3, 31, 12, tzinfo=UTC)
    )
    assert query(fake.requests[0]) == {
        "fromDate": "2024-03-31T00:00:00",
        "toDate": "2024-03-31T14:00:00",
    }


def test_form_results_use_start_and_end_date():
    """The form-result range is a ``DateParam``: yyyyMMddHHmmss, in the account's zone."""
    client, fake = make_client({"/form/result/F1": [json_response([])]})
    client.list_form_results(
        "F1", datetime(2024, 5, 1), datetime(2024, 5, 2, 21, 59, 59, tzinfo=UTC), completed=True
    )
    assert query(fake.requests[0]) == {
        "startDate": "20240501000000",
        "endDate": "20240502235959",
        "completed": "true",
    }


CASES = [
    ("2024-01-15T10:00:00", datetime(2024, 1, 15, 9, tzinfo=UTC)),
    ("2024-07-15T10:00:00", datetime(2024, 7, 15, 8, tzinfo=UTC)),
    ("2024-07-15T10:00:00.250", datetime(2024, 7, 15, 8, 0, 0, 250_000, tzinfo=UTC)),
    ("2024-07-15T10:00:00Z", datetime(2024, 7, 15, 10, tzinfo=UTC)),
    ("2024-07-15T10:00:00.123456Z", datetime(2024, 7, 15, 10, 0, 0, 123_456, tzinfo=UTC)),
    ("2024-07-15T10:00:00+02:00", datetime(2024, 7, 15, 8, tzinfo=UTC)),
    ("2024-07-15T10:00:00.5-0300", datetime(2024, 7, 15, 13, 0, 0, 500_000, tzinfo=UTC)),
    ("2024-10-27T02:30:00", datetime(2024, 10, 27, 0, 30, tzinfo=UTC)),  # ambiguous: first
    ("2024-03-31T02:30:00", datetime(2024, 3, 31, 1, 30, tzinfo=UTC)),  # in the gap: forward
    ("2024-07-15 10:00:00", datetime(2024, 7, 15, 8, tzinfo=UTC)),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_parse_both_forms(text, expected):
    parsed = parse_api_datetime(text, AMS)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "texts", [[t for t, _ in CASES[:3]], [t for t, _ in CASES[3:7]], [t for t, _ in CASES]]
)
def test_arrow_parse_agrees_with_python(texts):
    """Vectorised (naive / offset-carrying) and per-element (mixed) paths give the same."""
    array = parse_timestamp_array(pa.array([*texts, None], pa.string()), "Europe/Amsterdam", AMS)
    assert array.type == TIMESTAMP_TYPE
    assert array.to_pylist() == [parse_api_datetime(t, AMS) for t in texts] + [None]


@pytest.mark.parametrize("text", [None, ""])
def test_empty_timestamps_are_none(text):
    assert parse_api_datetime(text, AMS) is None


def test_garbage_timestamp_raises_value_error():
    with pytest.raises(ValueError):
        parse_api_datetime("yesterday", AMS)
