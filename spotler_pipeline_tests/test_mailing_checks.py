"""The mailing asset checks pass on loaded data and fail on corrupted data: inline, in the
step that wrote (on the days it wrote), and in their nightly whole-table version."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from spotler_pipeline.defs.checks import ALL_DAYS, WarehouseCheck, evaluated
from spotler_pipeline.defs.resources import WarehouseResource
from spotler_pipeline.warehouse import Table, ensure_schema, quality
from spotler_pipeline.warehouse.connection import open_warehouse
from spotler_pipeline.warehouse.mailing_tables import MAILING_RECIPIENTS, MAILINGS
from spotler_pipeline.warehouse.quality import (
    Finding,
    Window,
    duplicate_keys,
    recipients_vs_sent_count,
)
from spotler_pipeline_tests.pipeline_harness import MAILING_ASSETS, Harness

CHECKS = [
    ("mailing_opens", "primary_key_unique"),
    ("mailing_clicks", "click_links_exist"),
    ("mailing_recipients", "recipients_match_sent_count"),
    ("mailing_opens", "unique_openers_match_statistics"),
    ("mailing_clicks", "unique_clickers_match_statistics"),
]


def run_checks(harness: Harness) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    """The nightly ``<check>_all_days`` checks, run through Dagster as job
    ``spotler_nightly_checks`` runs them, by (table, check name without the suffix)."""
    checks = [
        c
        for c in harness.defs.asset_checks or []
        if all(k.name.endswith(ALL_DAYS) for k in c.check_keys)
    ]
    result = dg.materialize(
        [*checks, *harness.assets_for(MAILING_ASSETS + ("mailing_stats_snapshots",))],
        selection=dg.AssetSelection.checks(*checks),
        resources=harness.resources(),
    )
    return {
        (e.asset_key.path[-1], e.check_name.removesuffix(ALL_DAYS)): e
        for e in result.get_asset_check_evaluations()
    }


@pytest.fixture
def loaded(harness: Harness) -> tuple[Harness, dict[tuple[str, str], dg.AssetCheckEvaluation]]:
    """The busiest day and today's snapshot loaded, with the checks their steps evaluated."""
    day = harness.busiest_day()
    stats = harness.materialize(["mailing_stats_snapshots"], day=harness.now.date())
    written = harness.materialize(MAILING_ASSETS, day=day)
    inline = {
        (e.asset_key.path[-1], e.check_name): e
        for result in (stats, written)
        for e in result.get_asset_check_evaluations()
    }
    return harness, inline


def test_checks_pass_on_loaded_data(
    loaded: tuple[Harness, dict[tuple[str, str], dg.AssetCheckEvaluation]],
) -> None:
    harness, inline = loaded
    nightly = run_checks(harness)
    for check in CHECKS:
        assert inline[check].passed, (check, inline[check].description)
        assert nightly[check].passed, (check, nightly[check].description)


@pytest.mark.parametrize(
    ("check", "damage", "expected"),
    [
        (
            CHECKS[0],
            "INSERT INTO spotler.mailing_opens SELECT * FROM spotler.mailing_opens LIMIT 1",
            1,  # the copied key
        ),
        (
            CHECKS[1],
            "DELETE FROM spotler.mailing_links WHERE link_id IN "
            "(SELECT link_id FROM spotler.mailing_clicks LIMIT 1)",
            1,  # the (mailing, link) whose link is gone
        ),
        (
            CHECKS[2],
            "DELETE FROM spotler.mailing_recipients WHERE rowid IN "
            "(SELECT rowid FROM spotler.mailing_recipients LIMIT 1)",
            1,  # the mailing one recipient short
        ),
        (
            CHECKS[3],
            "UPDATE spotler.mailing_stats_snapshots SET open_count = open_count * 2 + 100",
            "opens",  # every mailing of the day with opens
        ),
        (
            CHECKS[4],
            "UPDATE spotler.mailing_stats_snapshots SET click_count = click_count * 2 + 100",
            "clicks",  # every mailing of the day with clicks
        ),
    ],
    ids=[c[1] for c in CHECKS],
)
def test_check_fails_on_corrupted_data(
    loaded: tuple[Harness, dict[tuple[str, str], dg.AssetCheckEvaluation]],
    check: tuple[str, str],
    damage: str,
    expected: int | str,
) -> None:
    harness, _ = loaded
    day = harness.busiest_day()
    if isinstance(expected, str):  # mailings with opens / clicks by now, per the simulator
        now = int(harness.now.timestamp())
        data = harness.sim.account.mailing_data
        expected = sum(
            getattr(data(m), expected).visible(now) > 0 for m in harness.sent_mailings(day, day)
        )
        assert expected >= 1
    harness.execute(damage)
    result = run_checks(harness)[check]
    assert not result.passed
    assert result.metadata["problems"].value == expected
    # the same rule on the damaged send day alone, as the writing step evaluates it
    inline = harness.run_check(*check, days=(day, day))
    assert not inline.passed
    assert inline.metadata["problems"].value == expected


def _generate(
    conn: duckdb.DuckDBPyConnection, table: Table, values: dict[str, str], rows: int
) -> None:
    """Insert ``rows`` rows into ``table``: each column named in ``values`` is that SQL
    expression of the row number ``i``, the others NULL."""
    select = ", ".join(values.get(c.name, "NULL") for c in table.columns)
    conn.execute(f"INSERT INTO {table.qualified_name} SELECT {select} FROM range({rows}) t(i)")


def _record_key_groupings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The slices of each time a check groups its problem rows (``quality._problems``), in
    a list that fills as the checks run."""
    slices: list[int] = []
    problems_of = quality._problems

    def recording(*args: Any) -> tuple[int, list[dict[str, Any]]]:
        slices.append(args[4])
        return problems_of(*args)

    monkeypatch.setattr(quality, "_problems", recording)
    return slices


def test_the_key_check_of_a_long_window_fits_a_small_memory_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first load writes 30 days at once, and its inline key check reads them under the
    checks' small memory limit: the slices shrink with the limit, so the check is evaluated
    (and still finds every duplicate) instead of failing with "Out of Memory". With fixed
    4M-row slices this failed at 64 MB on 28M recipients (the 30-day first load of
    ``scripts/bench.py --items 2``); here the same at a smaller scale: 6M rows under 48 MB.

    Whether a slice fits also depends on the threads (1 run in 10 ran out of memory at the
    computed size): a slice that does not fit is tried again as two. Forced here by sizing
    the first attempt at all 6M rows in one slice, which never fits in 48 MB."""
    path = tmp_path / "w.duckdb"
    table = MAILING_RECIPIENTS
    values = {
        "send_day": "DATE '2025-05-01' + (i % 30)::INT",
        "mailing_id": "'mailing-' || lpad((i % 41)::VARCHAR, 16, '0')",
        "contact_encrypted_id": "md5(i::VARCHAR)[1:24]",
    }
    with open_warehouse(path) as conn:
        ensure_schema(conn)
        _generate(conn, table, values, 6_000_000)
        _generate(conn, table, values, 3)  # three keys twice: rows 0, 1 and 2 again
    window = Window(date(2025, 5, 1), date(2025, 5, 31))
    duplicates = sorted(hashlib.md5(str(i).encode()).hexdigest()[:24] for i in range(3))
    tried = _record_key_groupings(monkeypatch)
    with duckdb.connect(str(path), read_only=True) as conn:
        conn.execute("SET threads = 2")
        conn.execute("SET memory_limit = '48MB'")
        conn.execute(f"SET temp_directory = '{tmp_path / 'spill'}'")
        for slice_rows in (None, 10_000_000):  # as computed; then all rows in one slice
            if slice_rows is not None:
                monkeypatch.setattr(quality, "SLICE_ROWS", slice_rows)
                monkeypatch.setattr(quality, "SLICE_ROW_BYTES", 1)
            tried.clear()
            finding = duplicate_keys(conn, table, window)
            assert (finding.checked, finding.problems) == (6_000_003, 3)
            assert sorted(r["contact_encrypted_id"] for r in finding.sample) == duplicates
            # 48 MB / 32 B a row: slices of 1.5M rows, five for 6,000,003
            assert tried[0] == (5 if slice_rows is None else 1)
    assert tried[:2] == [1, 2] and tried == [2**n for n in range(len(tried))]


def test_the_key_check_groups_the_keys_only_when_two_rows_share_a_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without duplicates, the key check groups the keys' hashes only (cheaper than their
    strings). Two rows with one hash make it group the keys themselves: a collision (forced
    here) then counts no problem, real duplicates are counted and sampled."""
    path = tmp_path / "w.duckdb"
    table = MAILING_RECIPIENTS
    values = {
        "send_day": "DATE '2025-05-01' + (i % 3)::INT",
        "mailing_id": "'mailing-' || (i % 7)::VARCHAR",
        "contact_encrypted_id": "md5(i::VARCHAR)[1:24]",
    }
    with open_warehouse(path) as conn:
        ensure_schema(conn)
        _generate(conn, table, values, 50_000)
    window = Window(date(2025, 5, 1), date(2025, 5, 4))
    grouped = _record_key_groupings(monkeypatch)
    with duckdb.connect(str(path)) as conn:
        assert (duplicate_keys(conn, table, window).problems, grouped) == (0, [])
        with monkeypatch.context() as collide:
            collide.setattr(quality, "_repeated_hash", lambda *args: True)
            assert (duplicate_keys(conn, table, window).problems, grouped) == (0, [1])
        _generate(conn, table, values, 2)  # rows 0 and 1 again
        finding = duplicate_keys(conn, table, window)
    assert (finding.checked, finding.problems, len(grouped)) == (50_002, 2, 2)
    assert sorted(r["contact_encrypted_id"] for r in finding.sample) == sorted(
        hashlib.md5(str(i).encode()).hexdigest()[:24] for i in range(2)
    )


def test_the_recipients_check_is_evaluated_every_time(tmp_path: Path) -> None:
    """DuckDB 1.5.5's window operator fails now and then on several threads ("INTERNAL
    Error: Attempted to access index 0 within vector of size 0"), so a finding's count must
    not come from ``count(*) OVER ()``: it failed about 1 evaluation in 40 at 32 threads (1 in
    200 at 2), and took every later check of its connection down with it. Here the rule runs
    300 times, each on a new connection, and finds its one short mailing every time."""
    path = tmp_path / "w.duckdb"
    with open_warehouse(path) as conn:
        ensure_schema(conn)
        mailing = {
            "encrypted_id": "'mailing-' || i",
            "send_day": "DATE '2026-06-01' + (i % 3)::INT",
            "sent_count": "30",
        }
        _generate(conn, MAILINGS, mailing, 35)
        recipient = {
            "send_day": "DATE '2026-06-01' + ((i // 30) % 3)::INT",
            "mailing_id": "'mailing-' || (i // 30)",
            "contact_encrypted_id": "'contact-' || i",
        }
        # every mailing's 30 recipients but the last one's last
        _generate(conn, MAILING_RECIPIENTS, recipient, 35 * 30 - 1)
    for _ in range(300):
        with duckdb.connect(str(path), read_only=True) as conn:
            conn.execute("SET threads = 32")
            finding = recipients_vs_sent_count(conn)
        assert (finding.checked, finding.problems) == (35, 1)
        assert finding.sample[0]["mailing_id"] == "mailing-34"


def test_a_check_that_breaks_its_connection_leaves_the_others_evaluated(tmp_path: Path) -> None:
    """An internal error in DuckDB invalidates the database the check's connection is on:
    the check reports it, and the checks after it are evaluated on a new connection instead
    of all failing with "database has been invalidated"."""
    warehouse = WarehouseResource(database=str(tmp_path / "w.duckdb"))
    with warehouse.get_connection() as conn:
        ensure_schema(conn)
        conn.execute(
            f"INSERT INTO {MAILINGS.qualified_name} (encrypted_id, send_day) "
            "VALUES ('m1', DATE '2026-06-01'), ('m1', DATE '2026-06-01')"
        )

    def breaks(conn: duckdb.DuckDBPyConnection, window: Window | None) -> Finding:
        conn.close()  # as unusable as an invalidated database
        raise duckdb.InternalException("INTERNAL Error: Attempted to access index 0")

    keys = WarehouseCheck(MAILINGS, "keys", "", lambda c, w: duplicate_keys(c, MAILINGS, w), "")
    broken = WarehouseCheck(MAILINGS, "broken", "", breaks, "")
    results = list(evaluated(warehouse, "64MB", [(keys, None, None), (broken, None, None)] * 2))
    assert [r.check_name for r in results] == ["keys", "broken", "keys", "broken"]
    assert [r.metadata["problems"].value for r in results[::2]] == [1, 1]
    assert [r.metadata["error"].value for r in results[1::2]] == [
        "InternalException: INTERNAL Error: Attempted to access index 0"
    ] * 2


def test_a_check_out_of_memory_on_several_threads_is_tried_on_one() -> None:
    """The retry runs the same query again with ``threads = 1`` and restores the setting."""
    conn = duckdb.connect(config={"threads": 2})
    tried: list[int] = []

    def query(c: duckdb.DuckDBPyConnection, window: Window | None) -> Finding:
        threads = int(c.execute("SELECT current_setting('threads')").fetchone()[0])  # type: ignore[index]
        tried.append(threads)
        if threads > 1:
            raise duckdb.OutOfMemoryException("Out of Memory Error: failed to pin block")
        return Finding(checked=3, problems=0)

    check = WarehouseCheck(MAILINGS, "fits_on_one_thread", "test", query, "rows")
    result = check.evaluate(conn, None)
    assert result.passed and tried == [2, 1]
    assert result.metadata["evaluated_on_one_thread"].value is True
    assert conn.execute("SELECT current_setting('threads')").fetchone() == (2,)
