"""A write's memory: a refresh deletes any number of stored rows, its inserts stay capped,
and staged rows reach the warehouse exactly as fetched.

DuckDB keeps ~10 bytes per deleted row in memory until the commit and cannot spill them; a
fixed cap of 48 MB over the whole write failed the daily refresh of 30 send days (9.5M
stored opens at scale 10) with "failed to pin block". Each test has its own DuckDB file.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from spotler_pipeline.warehouse import Replacement, StagingArea, replace_window
from spotler_pipeline.warehouse import writes as writes_module
from spotler_pipeline.warehouse.connection import open_warehouse
from spotler_pipeline.warehouse.ddl import ensure_schema
from spotler_pipeline.warehouse.mailing_tables import MAILING_OPENS
from spotler_pipeline.warehouse.model import Column, Table

START, END = date(2025, 5, 3), date(2025, 6, 2)  # the daily refresh's 30 send days
MB = 1_000_000


def _opens(n: int, day: date = START) -> pa.Table:
    return pa.Table.from_pylist(
        [{"send_day": day, "mailing_id": "new", "contact_encrypted_id": f"c{i}"} for i in range(n)],
        schema=MAILING_OPENS.arrow_schema,
    )


def _store_opens(database: Path, n: int) -> None:
    """``n`` stored opens spread over the window, written by DuckDB itself (quick: narrow
    rows, and room to build them without spilling)."""
    conn = open_warehouse(database, config={"memory_limit": "1GB"})
    try:
        ensure_schema(conn)
        conn.execute(
            "INSERT INTO spotler.mailing_opens (send_day, mailing_id) "
            "SELECT ?::DATE + (i % 30)::INTEGER, 'old' FROM range(?) t(i)",
            [START, n],
        )
    finally:
        conn.close()


def _replace_opens(conn: duckdb.DuckDBPyConnection, new_rows: int, **kwargs) -> list:
    with StagingArea() as stage:
        stage.append(MAILING_OPENS, _opens(new_rows))
        return replace_window(
            conn,
            [Replacement(MAILING_OPENS, stage.files(MAILING_OPENS))],
            START,
            END,
            **kwargs,
        )


def test_a_refresh_deletes_more_stored_rows_than_the_insert_cap_could_hold(
    tmp_path: Path,
) -> None:
    # 6.5M deleted rows need ~60 MB of DuckDB's memory until the commit: more than the
    # write's insert cap of 48 MB (the old fixed cap failed from ~5.7M rows on).
    stored = 6_500_000
    _store_opens(tmp_path / "w.duckdb", stored)
    conn = open_warehouse(tmp_path / "w.duckdb")
    try:
        (result,) = _replace_opens(conn, 1000)
        assert (result.rows_deleted, result.rows_inserted) == (stored, 1000)
        assert conn.execute("SELECT count(*) FROM spotler.mailing_opens").fetchone() == (1000,)
    finally:
        conn.close()


def test_the_insert_is_capped_above_what_the_delete_holds_and_the_cap_is_restored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _store_opens(tmp_path / "w.duckdb", 2_000_000)
    conn = open_warehouse(tmp_path / "w.duckdb")
    seen: list[tuple[int, int]] = []
    real = writes_module.insert_staged

    def spy(c: duckdb.DuckDBPyConnection, *args, **kwargs) -> int:
        used = c.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchone()[0]
        limit = c.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        seen.append((int(used), writes_module.memory_bytes(limit)))
        return real(c, *args, **kwargs)

    monkeypatch.setattr(writes_module, "insert_staged", spy)
    try:
        before = conn.execute("SELECT current_setting('memory_limit')").fetchone()
        _replace_opens(conn, 1000)
        ((used, limit),) = seen
        assert used > 10 * MB, "the delete's bookkeeping should be in use during the insert"
        # 48MB on top of what the delete holds (the limit is shown rounded to 0.1 MiB)
        assert abs(limit - (used + 48 * MB)) < 0.2 * 2**20, (used, limit)
        assert conn.execute("SELECT current_setting('memory_limit')").fetchone() == before

        seen.clear()
        _replace_opens(conn, 1000, memory=writes_module.WriteMemory(insert=None, ceiling="300MB"))
        ((used, limit),) = seen
        assert abs(limit - 300 * MB) < 0.2 * 2**20, limit
        assert conn.execute("SELECT current_setting('memory_limit')").fetchone() == before
    finally:
        conn.close()


ALL_TYPES = Table(
    name="type_round_trip",
    description="Every column type the warehouse stages.",
    columns=(
        Column("day", "DATE", ""),
        Column("at", "TIMESTAMPTZ", ""),
        Column("text", "VARCHAR", ""),
        Column("big", "BIGINT", ""),
        Column("small", "INTEGER", ""),
        Column("real", "DOUBLE", ""),
        Column("flag", "BOOLEAN", ""),
        Column("doc", "JSON", ""),
        Column("tags", "VARCHAR[]", ""),
    ),
    primary_key=("big",),
    partition_column="day",
)


def test_staged_rows_reach_the_warehouse_exactly_as_fetched(tmp_path: Path) -> None:
    day = date(2025, 5, 3)
    rows = [
        {
            "day": day,
            "at": datetime(2025, 5, 3, 6, 59, 59, 123456, tzinfo=UTC),
            "text": "é 😀 'quoted' \"double\"\n",
            "big": 2**63 - 1,
            "small": -(2**31),
            "real": 0.1 + 0.2,
            "flag": True,
            "doc": '{"a": [1, 2.5, null], "b": "x"}',
            "tags": ["a", None, ""],
        },
        {
            "day": day,
            "at": datetime(1900, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
            "text": "",
            "big": -(2**63),
            "small": 2**31 - 1,
            "real": -0.0,
            "flag": False,
            "doc": "[]",
            "tags": [],
        },
        {
            "day": day,
            "at": datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            "text": None,
            "big": 0,
            "small": None,
            "real": 1e308,
            "flag": None,
            "doc": None,
            "tags": None,
        },
        {"day": day, "at": None, "big": 1, "real": math.inf},
        {"day": day, "big": 2, "real": math.nan},
    ]
    conn = open_warehouse(tmp_path / "w.duckdb")
    try:
        ensure_schema(conn)
        conn.execute(ALL_TYPES.create_sql())
        with StagingArea(tmp_path / "staging") as stage:
            stage.append(ALL_TYPES, pa.Table.from_pylist(rows, schema=ALL_TYPES.arrow_schema))
            replace_window(
                conn,
                [Replacement(ALL_TYPES, stage.files(ALL_TYPES))],
                day,
                date(2025, 5, 4),
            )
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'type_round_trip'"
            ).fetchall()
        )
        assert types["at"] == "TIMESTAMP WITH TIME ZONE" and types["doc"] == "JSON"
        stored = conn.execute("SELECT * FROM spotler.type_round_trip ORDER BY big").to_arrow_table()
    finally:
        conn.close()
    got = {r["big"]: r for r in stored.cast(ALL_TYPES.arrow_schema).to_pylist()}
    for row in rows:
        expected = {c: row.get(c) for c in ALL_TYPES.column_names}
        actual = got[row["big"]]
        if isinstance(expected["real"], float) and math.isnan(expected["real"]):
            assert math.isnan(actual.pop("real"))
            expected.pop("real")
        elif expected["real"] == 0.0:
            assert math.copysign(1, actual["real"]) == math.copysign(1, expected["real"])
        assert actual == expected


def test_a_page_that_fails_to_stage_fails_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pages are written by the staging area's own thread: its failure must not be lost.
    from spotler_pipeline.warehouse import staging

    def broken(self, batch) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(staging._PageWriter, "write_batch", broken)
    with StagingArea(tmp_path) as stage:
        stage.append(MAILING_OPENS, _opens(10))
        with pytest.raises(RuntimeError, match="No space left on device"):
            stage.files(MAILING_OPENS)
        with pytest.raises(RuntimeError, match="No space left on device"):
            stage.append(MAILING_OPENS, _opens(10))
