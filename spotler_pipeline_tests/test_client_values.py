"""Every Arrow decoder gives the values of the one conversion per value type.

The batches hold the leaves :mod:`spotler_pipeline.row_layouts` names, converted as
:mod:`spotler_pipeline.client.values` / ``parse_api_datetime`` convert one value; these tests
hold every decoder (strict, inferred, python) to that, leaf by leaf.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pyarrow as pa
import pytest

from spotler_pipeline import row_layouts as layouts
from spotler_pipeline.client.columnar import ArrowPageDecoder
from spotler_pipeline.client.timestamps import PAGE_MEMORY
from spotler_pipeline.client.values import text
from spotler_pipeline.row_layouts import BatchLayout
from spotler_pipeline_tests.test_client_support import (
    PagedResource,
    layout_row,
    make_client,
    rows_of,
)

AMS = ZoneInfo("Europe/Amsterdam")

LAYOUTS: dict[str, BatchLayout] = {
    "recipients": layouts.RECIPIENT_LAYOUT,
    "opens": layouts.OPEN_LAYOUT,
    "clicks": layouts.CLICK_LAYOUT,
    "bounces": layouts.BOUNCE_LAYOUT,
    "campaign recipients": layouts.CAMPAIGN_RECIPIENT_LAYOUT,
    "campaign opens": layouts.CAMPAIGN_OPEN_LAYOUT,
    "campaign clicks": layouts.CAMPAIGN_CLICK_LAYOUT,
    "campaign bounces": layouts.CAMPAIGN_BOUNCE_LAYOUT,
}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("a+b@x.nl", "a+b@x.nl"),
        ("", ""),
        (12, "12"),
        (-3, "-3"),
        (2**62, "4611686018427387904"),
        (1.0, "1"),  # the record path used to say "1.0" where the Arrow path said "1"
        (123456789012.0, "123456789012"),  # Arrow's own cast says "1.23456789012e+11"
        (1e20, "100000000000000000000"),
        (2.5, "2.5"),
        (True, "true"),
        (False, "false"),
        ({"b": 1, "a": [1, "x"]}, '{"b":1,"a":[1,"x"]}'),
        ([1, 2], "[1,2]"),
    ],
)
def test_one_text_conversion(value: Any, expected: str | None) -> None:
    assert text(value) == expected


def _page(layout: BatchLayout, leaves: list[Any], *, bare: bool = False) -> bytes:
    """A page whose row ``i`` holds ``leaves[i]`` in every text leaf of ``layout`` and a
    timestamp (varied forms) in every timestamp leaf; some rows miss a leaf or a parent."""
    stamps = [
        "2024-05-01T10:00:00",
        "2024-05-01T10:00:00.5Z",
        "2024-10-27T02:30:00",  # ambiguous in Amsterdam: the first 02:30
        "2024-03-31T02:30:00",  # in the spring-forward gap
        "2024-05-01T10:00:00+02:00",
        None,
        "",
    ]
    rows: list[dict[str, Any]] = []
    for i, leaf in enumerate(leaves):
        row: dict[str, Any] = {"unknownField": {"nested": [i]}}
        for column in layout.columns:
            if i % 5 == 4 and column.source[-1] != "externalId":
                continue  # leaf missing
            node = row
            for key in column.source[:-1]:
                node = node.setdefault(key, {})
            node[column.source[-1]] = stamps[i % len(stamps)] if column.timestamp else leaf
        rows.append(row)
    rows.append({"contactIdentifier": None})
    rows.append({})
    return orjson.dumps(rows if bare else {"items": rows, "paging": {"next": "n"}})


PAGES = {
    # (leaf values, bare array, the decoder that reads the page)
    "text": (["c1", "a+b@x.nl", "", "K-9", "ü", "x"], False, "strict"),
    "integers": ([1000, -1, 2**62, 0, 7, 8], False, "inferred"),
    "booleans": ([True, False, True, False, True, True], False, "inferred"),
    "floats": ([1.0, 123456789012.0, 2.5, 1e20, 0.0, 3.0], False, "python"),
    "objects": ([{"a": 1}, [1, "x"], {}, [], {"b": None}, [2]], False, "python"),
    "mixed": (["c1", 12, 1.0, True, None, {"a": 1}], False, "python"),
    "bare array": (["c1", 12, "x", "y", "z", "w"], True, "python"),
}


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
@pytest.mark.parametrize(("leaves", "bare", "decoder"), PAGES.values(), ids=PAGES.keys())
def test_every_decoder_gives_the_values_of_one_conversion(
    layout: BatchLayout, leaves: list[Any], bare: bool, decoder: str
) -> None:
    body = _page(layout, leaves, bare=bare)
    decode = ArrowPageDecoder(layout, "items", "Europe/Amsterdam", AMS)
    default = pa.default_memory_pool()
    allocations = default.num_allocations()
    batch = decode(body).rows
    assert decode.last_decoder == decoder
    if default.backend_name != PAGE_MEMORY.backend_name:
        # Every array of the page comes from PAGE_MEMORY, whichever decoder read it: the fetch
        # threads leave Arrow's default allocator (a heap per thread) untouched.
        assert default.num_allocations() == allocations
    assert batch.schema == layout.schema
    data = orjson.loads(body)
    rows = data if bare else data["items"]
    assert batch.to_pylist() == [layout_row(layout, row, AMS) for row in rows]


def test_the_client_gives_the_values_of_one_conversion() -> None:
    rows = [
        {
            "contactIdentifier": {"externalId": ext, "encryptedId": f"e{i}"},
            "clickDate": "2024-05-01T10:00:00",
            "linkId": link,
            "campaignSubscriptionId": 7.0,
        }
        for i, (ext, link) in enumerate([(1.0, 17), (123456789012.0, 17.0), ("a@x.nl", "L")])
    ]
    path = "/campaign-mailing/CM1/clicks"
    client, _ = make_client({path: PagedResource("clicks", rows)}, page_size=2)
    window = ("CM1", datetime(2024, 5, 1), datetime(2024, 5, 2))
    got = rows_of(client.campaign_mailing_click_batches(*window))
    assert got == [layout_row(layouts.CAMPAIGN_CLICK_LAYOUT, row, AMS) for row in rows]
    assert [r["contact_external_id"] for r in got] == ["1", "123456789012", "a@x.nl"]
    assert [r["link_id"] for r in got] == ["17", "17", "L"]
    assert {r["campaign_subscription_id"] for r in got} == {"7"}
