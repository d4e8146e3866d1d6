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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from spotler_pipeline.row_layouts import TIMESTAMP_TYPE
from spotler_pipeline.simulator import Fault, Simulator
from spotler_pipeline.warehouse import drop_repeated
from spotler_pipeline.warehouse.catalog import TABLES
from spotler_pipeline.warehouse.mailing_tables import MAILING_OPENS
from spotler_pipeline_tests.pipeline_harness import (
    CAMPAIGN_CATALOG,
    CAMPAIGN_INTERACTIONS,
    MAILING_ASSETS,
    TIMEZONE,
    FullHarness,
    harness_with_all_groups,
    served_counts,
)

SHIFTED = (
    "mailing_recipients",
    "mailing_opens",
    "mailing_clicks",
    "campaign_mailing_recipients",
    "campaign_mailing_opens",
)
PAGE_ROWS = 5  # the fault's page cap: every listing of a few rows spans pages


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
    # every bulk listing of mailings and campaign messages shifts once, mid-read
    shift = sim.inject(
        Fault(
            "shifted_listing",
            path_pattern=r"/(recipients|opens|clicks)$",
            max_rows=PAGE_ROWS,
            times=None,
        )
    )

    mailings, log = full.materialize_logged(MAILING_ASSETS, day=day)
    assert full.materialize(CAMPAIGN_CATALOG).success
    campaigns = full.materialize(CAMPAIGN_INTERACTIONS, days=(first, last))

    assert mailings.success and campaigns.success
    assert shift.fired > 0
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
    assert any(re.match(r"mailing_opens of \S+: 1 of its rows repeated", w) for w in warnings), log
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


def _page(keys: list[str], dates: list[int]) -> pa.RecordBatch:
    stamps = [datetime(2026, 6, 1, 10, m, tzinfo=UTC) for m in dates]
    return pa.record_batch(
        {
            "contact_external_id": [f"x{k}" for k in keys],
            "contact_encrypted_id": keys,
            "open_date": pa.array(stamps, TIMESTAMP_TYPE),
        }
    )


@pytest.mark.parametrize(
    ("page", "kept"),
    [
        (_page(["c", "d", "e"], [3, 4, 5]), ["c", "d", "e"]),  # nothing repeated
        (_page(["b", "c", "d"], [2, 3, 4]), ["c", "d"]),  # shifted by one record
        (_page(["a", "b", "c"], [1, 2, 3]), ["c"]),  # by two
        (_page(["b", "c"], [9, 3]), ["b", "c"]),  # same contact, another open: not a repeat
    ],
)
def test_rows_repeated_from_the_page_before_are_dropped_on_the_key(
    page: pa.RecordBatch, kept: list[str]
) -> None:
    previous = _page(["z", "a", "b"], [0, 1, 2])
    fresh = drop_repeated(MAILING_OPENS, previous, page)
    assert fresh.column("contact_encrypted_id").to_pylist() == kept
    assert drop_repeated(MAILING_OPENS, None, page) is page
