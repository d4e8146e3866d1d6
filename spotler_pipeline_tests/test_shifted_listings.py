"""A listing that shifts while it is read, and ERROR checks that fail the run.

Spotler pages by offset (``after``) and keeps recording opens and clicks while a listing is
read: a record inserted ahead of the reader moves every later record one place on, so the
next page starts with the previous page's last row again. The pipeline drops such repeats on
the table's key before the write, says so, and stores exactly what Spotler holds.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson
import pytest

from spotler_pipeline.simulator import Simulator
from spotler_pipeline.warehouse.catalog import TABLES
from spotler_pipeline_tests.pipeline_harness import (
    CAMPAIGN_CATALOG,
    CAMPAIGN_INTERACTIONS,
    MAILING_ASSETS,
    TIMEZONE,
    FullHarness,
    harness_with_all_groups,
    served_counts,
)
from spotler_pipeline_tests.sync import spotler_through

# The bulk listings whose rows Spotler records while they are read.
LISTING = re.compile(r"/(?:mailing|campaign-mailing)/[^/]+/(?:recipients|opens|clicks)$")
SHIFTED = (
    "mailing_recipients",
    "mailing_opens",
    "mailing_clicks",
    "campaign_mailing_recipients",
    "campaign_mailing_opens",
)
PAGE_SIZE = 5


class ShiftOnce(httpx.BaseTransport):
    """Forwards to the simulator and serves every listing as a live account would when one
    record is inserted ahead of the reader just before its second page: from then on each
    page starts with the row the page before ended with, and the last page brings one more
    row (the new record itself is left out, as it sorts before the reader)."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self._last_row: dict[str, Any] = {}
        self._carry: dict[str, Any] = {}
        self.shifted: set[str] = set()

    def transport(self) -> httpx.BaseTransport:
        return self

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        path = request.url.path
        if response.status_code != 200 or not LISTING.search(path):
            return response
        body = orjson.loads(response.read())
        field = next(k for k, v in body.items() if isinstance(v, list))
        rows = body[field]
        after = int(dict(parse_qsl(request.url.query.decode())).get("after", 0))
        if path not in self.shifted and after > 0 and rows and path in self._last_row:
            self.shifted.add(path)
            self._carry[path] = self._last_row[path]
        if path in self.shifted:
            rows = [self._carry[path], *rows]
            if (body.get("paging") or {}).get("next"):
                self._carry[path] = rows.pop()
        if rows:
            self._last_row[path] = rows[-1]
        body[field] = rows
        return httpx.Response(200, json=body)

    def close(self) -> None:
        self._inner.close()


@pytest.fixture
def full(simulator: Simulator, tmp_path: Path) -> FullHarness:
    return harness_with_all_groups(simulator, tmp_path / "warehouse" / "spotler.duckdb")


def duplicates(harness: FullHarness, table: str) -> int:
    """Keys of ``table`` stored more than once."""
    columns = ", ".join(f'"{k}"' for k in TABLES[table].primary_key)
    return harness.query(
        f"SELECT count(*) FROM (SELECT {columns} FROM spotler.{table} "
        "GROUP BY ALL HAVING count(*) > 1)"
    )[0][0]


def test_a_listing_shifted_mid_read_is_stored_once(full: FullHarness) -> None:
    sim = full.sim
    last = full.now.date()
    first = last - timedelta(days=9)
    day = full.busiest_day()
    expected = served_counts(sim, MAILING_ASSETS[2:], day, day) | served_counts(
        sim, CAMPAIGN_INTERACTIONS, first, last
    )
    shift = ShiftOnce()
    fields = {**full.spotler().model_dump(), "page_size": PAGE_SIZE}
    spotler = spotler_through(shift, **fields)  # type: ignore[arg-type]
    mailings, log = full.materialize_logged(MAILING_ASSETS, day=day, spotler=spotler)
    assert full.materialize(CAMPAIGN_CATALOG).success
    campaigns = full.materialize(CAMPAIGN_INTERACTIONS, days=(first, last), spotler=spotler)

    assert mailings.success and campaigns.success
    assert any("/mailing/" in p and p.endswith("/recipients") for p in shift.shifted)
    assert any("/campaign-mailing/" in p and p.endswith("/opens") for p in shift.shifted)
    for table in SHIFTED:
        assert duplicates(full, table) == 0, table
    assert {t: full.count(t) for t in expected} == expected
    repeated = {
        event.asset_key.path[-1]: event.materialization.metadata["rows_repeated_across_pages"].value
        for result in (mailings, campaigns)
        for event in result.get_asset_materialization_events()
        if event.asset_key.path[-1] in SHIFTED
    }
    assert all(repeated[t] > 0 for t in SHIFTED), repeated
    warnings = [line for line in log.splitlines() if "repeated across pages" in line]
    assert any(re.match(r"mailing_opens of \S+: 1 rows repeated", w) for w in warnings), log
    assert not any("@" in w for w in warnings)  # names the listing, never a contact


def test_a_failing_error_check_fails_the_cli_run(full: FullHarness) -> None:
    """Recipients loaded without their mailings (the ERROR check ``mailings_in_catalogue``
    fails): the rows are written and published, and ``dagster asset materialize`` exits
    non-zero naming the check."""
    sim = full.sim
    day = full.busiest_day()
    env = {
        **os.environ,
        "SPOTLER_BASE_URL": sim.base_url,
        "SPOTLER_CONSUMER_KEY": sim.consumer_key,
        "SPOTLER_CONSUMER_SECRET": sim.consumer_secret,
        "SPOTLER_DUCKDB_PATH": str(full.database),
        "SPOTLER_TIMEZONE": TIMEZONE,
    }
    run = subprocess.run(
        [
            *(sys.executable, "-m", "dagster", "asset", "materialize", "-m", "spotler_pipeline"),
            *("--select", "spotler/mailing_recipients", "--partition", day.isoformat()),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode != 0, run.stdout + run.stderr
    assert "mailings_in_catalogue" in run.stdout + run.stderr
    assert full.count("mailing_recipients") > 0
