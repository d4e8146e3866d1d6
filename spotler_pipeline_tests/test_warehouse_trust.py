"""The warehouse keeps what it holds: scoped replaces, upgrades, the account, staging, locks.

Each test has its own DuckDB file; none needs Dagster or the simulator.
"""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from spotler_pipeline.warehouse import (
    Absent,
    Replacement,
    Scope,
    StagingArea,
    ddl,
    migrations,
    replace_window,
)
from spotler_pipeline.warehouse import connection as connection_module
from spotler_pipeline.warehouse.account import AccountMismatchError, adopt_account
from spotler_pipeline.warehouse.catalog import ALL_TABLES
from spotler_pipeline.warehouse.connection import WarehouseLockedError, open_warehouse
from spotler_pipeline.warehouse.mailing_tables import MAILING_OPENS, MAILINGS
from spotler_pipeline.warehouse.views import VIEWS

FIXTURES = Path(__file__).parent / "fixtures"
DAY = date(2026, 6, 1)


def _mailing(mailing_id: str, day: date = DAY) -> dict:
    return {"send_day": day, "encrypted_id": mailing_id, "name": mailing_id, "present": True}


def _opens(mailing_id: str, n: int, day: date = DAY) -> list[dict]:
    return [
        {"send_day": day, "mailing_id": mailing_id, "contact_encrypted_id": f"c{i}"}
        for i in range(n)
    ]


def _staged(stage: StagingArea, table, rows: list[dict]) -> list[Path]:
    stage.append(table, pa.Table.from_pylist(rows, schema=table.arrow_schema))
    return stage.files(table)


def _write(conn, table, rows, scope=None, absent=(), account=None):
    with StagingArea() as stage:
        return replace_window(
            conn,
            [Replacement(table, _staged(stage, table, rows), scope)],
            DAY,
            date(2026, 6, 2),
            absent=absent,
            account=account,
        )


@pytest.fixture
def conn(tmp_path: Path):
    c = open_warehouse(tmp_path / "w.duckdb")
    yield c
    c.close()


def _count(conn, sql: str) -> int:
    return int(conn.execute(sql).fetchone()[0])


def test_scoped_replace_keeps_the_rows_of_items_not_fetched(conn) -> None:
    _write(conn, MAILING_OPENS, _opens("A", 5) + _opens("B", 3))
    # B is no longer listed: a refresh fetches A only (now 6 opens)
    (result,) = _write(conn, MAILING_OPENS, _opens("A", 6), Scope("mailing_id", ["A"]))
    assert (result.rows_deleted, result.rows_inserted, result.rows_kept) == (5, 6, 3)
    assert conn.execute(
        "SELECT mailing_id, count(*) FROM spotler.mailing_opens GROUP BY 1 ORDER BY 1"
    ).fetchall() == [("A", 6), ("B", 3)]


def test_scoped_replace_drops_staged_rows_of_an_item_that_went_missing(conn) -> None:
    _write(conn, MAILING_OPENS, _opens("A", 2) + _opens("B", 4))
    # B answered 404 after two of its pages were staged: neither its stored rows nor the
    # partial staged ones may replace what is there
    (result,) = _write(
        conn, MAILING_OPENS, _opens("A", 2) + _opens("B", 1), Scope("mailing_id", ["A"])
    )
    assert result.rows_inserted == 2
    assert _count(conn, "SELECT count(*) FROM spotler.mailing_opens WHERE mailing_id='B'") == 4


@pytest.mark.parametrize(
    "odd", ["it's", 'a"b', "-1", "--", "x' OR '1'='1", "/* c */", "?", "$start"]
)
def test_ids_reach_the_write_as_values_whatever_they_hold(conn, odd: str) -> None:
    """Item ids are bound parameters: quotes, comment marks, a negative number or a
    parameter mark in one select exactly that item."""
    _write(conn, MAILING_OPENS, _opens(odd, 2) + _opens("B", 3))
    (result,) = _write(conn, MAILING_OPENS, _opens(odd, 4), Scope("mailing_id", [odd]))
    assert (result.rows_deleted, result.rows_inserted, result.rows_kept) == (2, 4, 3)
    flagged = _write(
        conn,
        MAILINGS,
        [_mailing(odd), _mailing("B")],
        absent=[Absent(MAILINGS, "encrypted_id", [odd])],
    )
    assert flagged[0].rows_flagged == 1
    assert conn.execute(
        "SELECT encrypted_id, present FROM spotler.mailings ORDER BY 1"
    ).fetchall() == sorted([(odd, False), ("B", True)])


def test_catalogue_rows_outside_the_scope_and_absent_items_are_flagged(conn) -> None:
    _write(conn, MAILINGS, [_mailing("A"), _mailing("B"), _mailing("C")])
    results = _write(
        conn,
        MAILINGS,
        [_mailing("A")],
        Scope("encrypted_id", ["A"]),
        absent=[Absent(MAILINGS, "encrypted_id", ["C"])],
    )
    assert results[0].rows_kept == 2 and results[0].rows_flagged == 2
    assert conn.execute(
        "SELECT encrypted_id, present FROM spotler.mailings ORDER BY 1"
    ).fetchall() == [("A", True), ("B", False), ("C", False)]


def test_a_write_for_another_account_is_refused_and_changes_nothing(conn) -> None:
    _write(conn, MAILING_OPENS, _opens("A", 2), account="account-1")
    with pytest.raises(AccountMismatchError, match="another Spotler account"):
        _write(conn, MAILING_OPENS, _opens("X", 9), account="account-2")
    assert conn.execute("SELECT DISTINCT mailing_id FROM spotler.mailing_opens").fetchall() == [
        ("A",)
    ]
    assert adopt_account(conn, "account-2") == "account-1"
    _write(conn, MAILING_OPENS, _opens("X", 9), account="account-2")


# -- upgrades ------------------------------------------------------------------------------


def _first_release_warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    """A warehouse with the schema exactly as release 0.1.0 created it, and some rows."""
    conn = open_warehouse(path)
    conn.execute((FIXTURES / "schema_v0_1_0.sql").read_text())
    conn.execute(
        "INSERT INTO spotler.mailings (send_day, encrypted_id, name, sent_count) "
        "VALUES ('2026-06-01', 'M1', 'Nieuwsbrief', 3), ('2026-06-02', 'M2', 'Actie', 1)"
    )
    conn.execute(
        "INSERT INTO spotler.mailing_opens (send_day, mailing_id, contact_encrypted_id, "
        "open_date) VALUES ('2026-06-01', 'M1', 'c1', '2026-06-01 10:00:00+02')"
    )
    conn.execute(
        "INSERT INTO spotler.mailing_stats_snapshots (snapshot_day, mailing_id, open_count, "
        "snapshot_at) VALUES ('2026-06-03', 'M1', 1, '2026-06-03 08:00:00+02')"
    )
    return conn


def test_a_first_release_warehouse_is_upgraded_in_place_with_its_rows(tmp_path: Path) -> None:
    conn = _first_release_warehouse(tmp_path / "old.duckdb")
    assert ddl.schema_version(conn) == ddl.FIRST_RELEASE_VERSION
    ddl.ensure_schema(conn)
    assert ddl.schema_version(conn) == migrations.CURRENT_VERSION
    assert conn.execute(
        "SELECT encrypted_id, present FROM spotler.mailings ORDER BY 1"
    ).fetchall() == [("M1", True), ("M2", True)]
    assert _count(conn, "SELECT count(*) FROM spotler.mailing_opens") == 1
    assert conn.execute(
        "SELECT mailing_id, open_count FROM spotler.mailing_stats_latest"
    ).fetchall() == [("M1", 1)]
    history = conn.execute(
        "SELECT version, description FROM spotler_meta.schema_version ORDER BY version"
    ).fetchall()
    assert [v for v, _ in history] == [2, 3]
    # every view of this release exists and runs
    for name in VIEWS:
        conn.execute(f"SELECT * FROM spotler.{name} LIMIT 1").fetchall()
    # and its tables and columns are described as this release describes them
    described = dict(
        conn.execute(
            "SELECT table_name, comment FROM duckdb_tables() WHERE schema_name = 'spotler'"
        ).fetchall()
    )
    assert {t.name: described.get(t.name) for t in ALL_TABLES} == {
        t.name: t.description for t in ALL_TABLES
    }
    columns = dict(
        conn.execute(
            "SELECT table_name || '.' || column_name, comment FROM duckdb_columns() "
            "WHERE schema_name = 'spotler' AND table_name = 'mailing_opens'"
        ).fetchall()
    )
    assert columns == {
        f"mailing_opens.{c.name}": MAILING_OPENS.describe(c) for c in MAILING_OPENS.columns
    }
    ddl.ensure_schema(conn)  # idempotent
    assert len(conn.execute("SELECT * FROM spotler_meta.schema_version").fetchall()) == 2
    conn.close()


def test_a_failing_upgrade_leaves_the_old_warehouse_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = _first_release_warehouse(tmp_path / "old.duckdb")

    def broken(c: duckdb.DuckDBPyConnection) -> None:
        migrations._v2(c)
        raise RuntimeError("disk full halfway through the upgrade")

    monkeypatch.setattr(ddl, "MIGRATIONS", (migrations.Migration(2, "broken", broken),))
    with pytest.raises(RuntimeError, match="halfway"):
        ddl.ensure_schema(conn)
    assert ddl.schema_version(conn) == ddl.FIRST_RELEASE_VERSION
    columns = [r[0] for r in conn.execute("DESCRIBE spotler.mailings").fetchall()]
    assert "present" not in columns
    assert _count(conn, "SELECT count(*) FROM spotler.mailings") == 2
    conn.close()


def test_the_warehouse_written_by_release_0_1_0_opens_and_upgrades(tmp_path: Path) -> None:
    """The real file the first release wrote (DuckDB 2.0.1, `make demo` at scale 0.005)."""
    path = tmp_path / "spotler.duckdb"
    with gzip.open(FIXTURES / "warehouse_v0_1_0.duckdb.gz") as src, path.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    from spotler_pipeline.warehouse.legacy import convert_legacy_file

    assert convert_legacy_file(path) is not None
    conn = open_warehouse(path)
    before = {
        t: _count(conn, f"SELECT count(*) FROM spotler.{t}")
        for (t,) in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema='spotler' "
            "AND table_type='BASE TABLE'"
        ).fetchall()
    }
    assert before["mailing_recipients"] == 2732 and before["mailings"] == 8
    money = "SELECT mailing_id, snapshot_day, {} FROM spotler.mailing_stats_snapshots ORDER BY 1, 2"
    stored = conn.execute(money.format("conversion_value")).fetchall()
    ddl.ensure_schema(conn)
    after = {t: _count(conn, f"SELECT count(*) FROM spotler.{t}") for t in before}
    assert after == before
    # the numbers stored as a DOUBLE are the same whole numbers under the cents column
    cents = conn.execute(money.format("conversion_value_cents")).fetchall()
    assert cents == [(m, d, None if v is None else round(v)) for m, d, v in stored]
    assert any(v is not None for _, _, v in cents)
    assert _count(conn, "SELECT count(*) FROM spotler.mailings WHERE present") == 8
    assert _count(conn, "SELECT count(*) FROM spotler.mailing_stats_latest") > 0
    conn.close()


def test_a_warehouse_of_a_newer_release_is_refused(conn) -> None:
    ddl.ensure_schema(conn)
    conn.execute("INSERT INTO spotler_meta.schema_version VALUES (99, '9.0', now(), 'future')")
    with pytest.raises(ddl.NewerWarehouseError, match="newer spotler_pipeline"):
        ddl.ensure_schema(conn)


def test_views_are_recreated_when_their_definition_changes(
    conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    ddl.ensure_schema(conn)
    changed = dict(VIEWS)
    changed["mailing_stats_latest"] = (
        "CREATE OR REPLACE VIEW spotler.mailing_stats_latest AS SELECT 42 AS answer"
    )
    monkeypatch.setattr(ddl, "VIEWS", changed)
    monkeypatch.setattr(ddl, "VIEW_COLUMN_DESCRIPTIONS", {})
    ddl.ensure_schema(conn)
    assert conn.execute("SELECT * FROM spotler.mailing_stats_latest").fetchall() == [(42,)]
    # and when only what a view's columns mean changed, the comments are renewed
    monkeypatch.setattr(
        ddl, "VIEW_COLUMN_DESCRIPTIONS", {"mailing_stats_latest": {"answer": "The answer."}}
    )
    ddl.ensure_schema(conn)
    assert conn.execute(
        "SELECT comment FROM duckdb_columns() WHERE table_name = 'mailing_stats_latest'"
    ).fetchall() == [("The answer.",)]


def test_contact_tokens_are_stored_uncompressed_in_a_new_file(tmp_path: Path) -> None:
    """The contacts' encryptedIds (random tokens) skip DuckDB's string compression, which
    cost writes time for nothing; the e-mail addresses beside them are still compressed,
    and the hint survives closing and reopening the file."""
    conn = open_warehouse(tmp_path / "w.duckdb")
    ddl.ensure_schema(conn)
    conn.close()
    conn = open_warehouse(tmp_path / "w.duckdb")
    try:
        conn.execute(
            f"INSERT INTO {MAILING_OPENS.qualified_name} (send_day, mailing_id, "
            "contact_external_id, contact_encrypted_id) SELECT DATE '2026-06-01', 'm1', "
            "'contact' || i || '@example.com', md5(i::VARCHAR)[:24] FROM range(200000) t(i)"
        )
        conn.execute("CHECKPOINT")
        kinds = dict(
            conn.execute(
                "SELECT column_name, list(DISTINCT compression) FROM pragma_storage_info(?) "
                "WHERE segment_type = 'VARCHAR' GROUP BY ALL",
                [
                    f"{conn.execute('SELECT current_database()').fetchone()[0]}."
                    f"{MAILING_OPENS.qualified_name}"
                ],
            ).fetchall()
        )
    finally:
        conn.close()
    assert set(kinds["contact_encrypted_id"]) <= {"Uncompressed", "Constant"}
    assert "FSST" in kinds["contact_external_id"]


# -- staging and locks ---------------------------------------------------------------------


def test_staging_goes_where_it_is_told_and_clears_what_killed_runs_left(tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import time
                from spotler_pipeline.warehouse import StagingArea
                s = StagingArea({str(staging)!r})
                (s.directory / "recipients-0000.arrow").write_bytes(b"x" * 1000)
                print(s.directory, flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    killed_dir = Path(child.stdout.readline().strip())
    with StagingArea(staging) as living:
        assert living.directory.parent == staging
        assert killed_dir.exists(), "a running run's folder must never be removed"
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        with StagingArea(staging) as next_run:
            assert next_run.abandoned == [killed_dir]
            assert not killed_dir.exists()
            assert living.directory.exists()
    assert list(staging.iterdir()) == []


def test_a_run_waiting_for_the_file_says_who_holds_it_then_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "w.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb,time; c=duckdb.connect({str(path)!r}); print('held', flush=True); "
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(connection_module, "WAIT_REPORT_INTERVAL", 0.3)
        waits: list[str] = []
        started = time.monotonic()
        with pytest.raises(WarehouseLockedError) as raised:
            open_warehouse(path, lock_timeout=1.5, on_wait=waits.append)
        assert time.monotonic() - started < 10
        assert waits and all(f"PID {holder.pid}" in w for w in waits)
        message = str(raised.value)
        assert f"PID {holder.pid}" in message and "Close that process" in message
        assert "\n" not in message
    finally:
        holder.kill()
        holder.wait()
