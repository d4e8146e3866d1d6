"""A DuckLake on a real PostgreSQL: offline extensions, readers, conflicts, time travel, secrets."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from functools import partial
from pathlib import Path

import duckdb
import pytest

from spotler_pipeline.warehouse import lake
from spotler_pipeline.warehouse.lake import LakeSettings, open_lake
from spotler_pipeline.warehouse.writes import transaction
from spotler_pipeline_tests.postgres import PostgresServer

DAY = date(2026, 6, 1)


def _make_table(conn: duckdb.DuckDBPyConnection, days: int = 3, per_day: int = 100) -> None:
    conn.execute("CREATE SCHEMA IF NOT EXISTS spotler")
    conn.execute("CREATE TABLE spotler.events (send_day DATE, id VARCHAR, n INTEGER)")
    conn.execute("COMMENT ON TABLE spotler.events IS 'one row per event'")
    conn.execute(
        "INSERT INTO spotler.events SELECT ?::DATE + (i % ?)::INTEGER, 'e' || i, 0 "
        "FROM range(?) r(i)",
        [DAY, days, days * per_day],
    )


def _replace_day(conn: duckdb.DuckDBPyConnection, day: date, rows: int, tag: int) -> None:
    """What a partition write does: delete the day, insert its new rows."""
    conn.execute("DELETE FROM spotler.events WHERE send_day = ?", [day])
    conn.execute(
        "INSERT INTO spotler.events SELECT ?, 'e' || i, ? FROM range(?) r(i)", [day, tag, rows]
    )


def _replace_day_committed(conn: duckdb.DuckDBPyConnection, day: date, rows: int, tag: int) -> None:
    """The partition write as one whole transaction, for :func:`lake.retry_on_conflict`, in
    the warehouse writes' own transaction wrapper (no account to check here)."""
    with transaction(conn, None):
        _replace_day(conn, day, rows=rows, tag=tag)


def _two_writers_mid_transaction(
    lake_settings: LakeSettings, *, other_table: bool = False
) -> tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection]:
    """Two writers of one lake holding spotler.events (and, with ``other_table``, a copy of it,
    spotler.other), each in an open transaction; the first has replaced ``DAY`` with 7 rows
    (tag 1) and not committed yet."""
    first, second = open_lake(lake_settings), open_lake(lake_settings)
    _make_table(first)
    if other_table:
        first.execute("CREATE TABLE spotler.other AS SELECT * FROM spotler.events")
    first.execute("BEGIN")
    second.execute("BEGIN")
    _replace_day(first, DAY, rows=7, tag=1)
    return first, second


def test_write_then_read_from_a_second_read_only_connection(lake_settings: LakeSettings) -> None:
    writer = open_lake(lake_settings)
    _make_table(writer)
    reader = open_lake(lake_settings, read_only=True)
    try:
        assert reader.execute("SELECT count(*) FROM spotler.events").fetchone() == (300,)
        assert reader.execute("SELECT current_database()").fetchone() == (lake.LAKE_ALIAS,)
        comment = "SELECT comment FROM duckdb_tables() WHERE table_name = 'events'"
        assert reader.execute(comment).fetchone() == ("one row per event",)
        with pytest.raises(duckdb.InvalidInputException, match="read-only"):
            reader.execute("DELETE FROM spotler.events")

        # The reader sees each newly committed snapshot, with no copy of anything.
        writer.execute("INSERT INTO spotler.events VALUES (?, 'late', 1)", [DAY])
        assert reader.execute("SELECT count(*) FROM spotler.events").fetchone() == (301,)

        # Nothing came from DuckDB's extension server.
        settings = reader.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN "
            "('autoinstall_known_extensions', 'autoload_known_extensions')"
        ).fetchall()
        assert sorted(settings) == [
            ("autoinstall_known_extensions", "false"),
            ("autoload_known_extensions", "false"),
        ]
        loaded = reader.execute(
            "SELECT extension_name FROM duckdb_extensions() WHERE loaded "
            "AND extension_name IN ('ducklake', 'postgres_scanner')"
        ).fetchall()
        assert sorted(loaded) == [("ducklake",), ("postgres_scanner",)]
    finally:
        reader.close()
        writer.close()
    assert any(Path(lake_settings.data_path).rglob("*.parquet")), "data lives under the data path"


def _tampered_copy(name: str, folder: Path, as_name: str) -> Path:
    """A copy of ``name``'s extension file from its wheel with one byte changed (its
    signature no longer holds), saved as ``<as_name>.duckdb_extension``."""
    original = lake.extension_path(name)
    assert original is not None, f"the {name} wheel is installed for the lake tests"
    data = bytearray(original.read_bytes())
    data[-10] ^= 0xFF
    copy = folder / f"{as_name}.duckdb_extension"
    copy.write_bytes(bytes(data))
    return copy


def test_readers_keep_the_signature_check_and_writers_check_the_wheels_hashes(
    lake_settings: LakeSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = open_lake(lake_settings)
    _make_table(writer)
    reader = open_lake(lake_settings, read_only=True)
    try:
        unsigned = "SELECT current_setting('allow_unsigned_extensions')"
        assert reader.execute(unsigned).fetchone() == (False,)
        assert writer.execute(unsigned).fetchone() == (True,)
        # A later LOAD on an analyst's connection cannot run an unsigned file.
        probe = _tampered_copy("ducklake", tmp_path, "probe")
        with pytest.raises(duckdb.IOException, match="signature is either missing or invalid"):
            reader.execute(f"LOAD '{probe}'")
    finally:
        reader.close()
        writer.close()

    # A writer refuses an extension file that is not the one pip installed.
    changed = _tampered_copy("ducklake", tmp_path, "ducklake")
    real = lake.extension_path
    monkeypatch.setattr(
        lake,
        "extension_path",
        lambda name, v=None: changed if name == "ducklake" else real(name, v),
    )
    with pytest.raises(lake.ExtensionTamperedError, match="its content changed"):
        open_lake(lake_settings)


def test_time_travel(lake_settings: LakeSettings) -> None:
    conn = open_lake(lake_settings)
    _make_table(conn)
    (before,) = conn.execute("SELECT max(snapshot_id) FROM lake.snapshots()").fetchone()
    _replace_day(conn, DAY, rows=5, tag=1)
    assert conn.execute("SELECT count(*) FROM spotler.events").fetchone() == (205,)
    assert conn.execute(
        f"SELECT count(*) FROM spotler.events AT (VERSION => {before})"
    ).fetchone() == (300,)
    conn.close()
    old = open_lake(lake_settings, snapshot_version=before)
    try:
        assert old.execute("SELECT count(*) FROM spotler.events").fetchone() == (300,)
        with pytest.raises(duckdb.InvalidInputException, match="read-only"):
            old.execute("DELETE FROM spotler.events")
    finally:
        old.close()


def test_concurrent_writers_of_one_table_conflict_at_commit(lake_settings: LakeSettings) -> None:
    """Different days of one table still conflict: DuckLake checks per table, at COMMIT."""
    first, second = _two_writers_mid_transaction(lake_settings)
    _replace_day(second, DAY + timedelta(days=1), rows=9, tag=2)  # another day
    first.execute("COMMIT")
    with pytest.raises(duckdb.TransactionException, match="Transaction conflict") as caught:
        second.execute("COMMIT")
    assert lake.is_conflict(caught.value)
    # The loser's transaction is gone already: ROLLBACK has nothing to roll back.
    with pytest.raises(duckdb.TransactionException, match="no transaction is active"):
        second.execute("ROLLBACK")

    # Re-running the whole transaction succeeds.
    lake.retry_on_conflict(
        partial(_replace_day_committed, second, DAY + timedelta(days=1), rows=9, tag=2)
    )
    counts = dict(
        first.execute("SELECT send_day, count(*) FROM spotler.events GROUP BY ALL").fetchall()
    )
    assert counts == {DAY: 7, DAY + timedelta(days=1): 9, DAY + timedelta(days=2): 100}
    first.close()
    second.close()


def test_writers_of_different_tables_do_not_conflict(lake_settings: LakeSettings) -> None:
    first, second = _two_writers_mid_transaction(lake_settings, other_table=True)
    second.execute("DELETE FROM spotler.other WHERE send_day = ?", [DAY])
    second.execute("INSERT INTO spotler.other VALUES (?, 'x', 2)", [DAY])
    first.execute("COMMIT")
    second.execute("COMMIT")
    first.close()
    second.close()


def test_retry_lets_concurrent_partition_writers_all_land(lake_settings: LakeSettings) -> None:
    """Six threads replace their own day of one table three times each, all at once."""
    setup = open_lake(lake_settings)
    _make_table(setup, days=6, per_day=10)
    setup.close()
    days = [DAY + timedelta(days=i) for i in range(6)]
    retries: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(days))

    def worker(index: int, day: date) -> None:
        conn = open_lake(lake_settings)
        try:
            start.wait()
            for round_ in range(3):
                lake.retry_on_conflict(
                    partial(_replace_day_committed, conn, day, rows=20 + index, tag=round_),
                    attempts=30,
                    base_delay=0.02,
                    on_retry=lambda n, e: retries.append(n),
                )
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i, d)) for i, d in enumerate(days)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    check = open_lake(lake_settings, read_only=True)
    counts = check.execute(
        "SELECT send_day, count(*), min(n), max(n) FROM spotler.events GROUP BY ALL ORDER BY 1"
    ).fetchall()
    check.close()
    assert counts == [(d, 20 + i, 2, 2) for i, d in enumerate(days)]
    assert retries, "the writers really did collide"


def test_a_password_never_appears_in_errors_or_the_catalog_list(
    ducklake_extensions: None, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    password = "s3cret-Pa55"
    postgres_server.create_role("lake_owner", password)
    postgres_server.create_database("lake_with_password", owner="lake_owner")
    base = postgres_server.dsn("lake_with_password").replace(
        f"user={postgres_server.user}", "user=lake_owner"
    )
    data = str(tmp_path / "data")
    host, port = postgres_server.host, postgres_server.port
    uri = f"postgresql://lake_owner:{password}@{host}:{port}/lake_with_password"

    for catalog in (f"postgres:{base} password={password}", f"postgres:{uri}"):
        conn = open_lake(LakeSettings(catalog, data))
        conn.execute("CREATE TABLE IF NOT EXISTS t AS SELECT 1 AS x")
        listed = str(conn.execute("SELECT * FROM duckdb_databases()").fetchall())
        listed += str(conn.execute("SELECT * FROM duckdb_secrets()").fetchall())
        assert password not in listed
        conn.close()
        assert password not in repr(LakeSettings(catalog, data))

    wrong = "wr0ng-Pa55"
    for catalog in (
        f"postgres:{base} password={wrong}",
        f"postgres:{base} password='{wrong} x'",
        f"postgres:postgresql://lake_owner:{wrong}@{host}:{port}/lake_with_password",
    ):
        with pytest.raises(duckdb.Error) as caught:
            open_lake(LakeSettings(catalog, data))
        assert "password authentication failed" in str(caught.value)
        assert wrong not in str(caught.value)
        assert caught.value.__context__ is None and caught.value.__cause__ is None


def test_no_lake_in_the_catalog_database_for_a_reader(lake_catalog: str) -> None:
    with pytest.raises(duckdb.Error, match="does not exist"):
        open_lake(LakeSettings(lake_catalog), read_only=True)


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert LakeSettings.from_env({}) is None
    assert LakeSettings.from_env({lake.CATALOG_ENV: "  "}) is None
    got = LakeSettings.from_env(
        {lake.CATALOG_ENV: "postgres:dbname=x password=pw", lake.DATA_PATH_ENV: "/data/lake"}
    )
    assert got == LakeSettings("postgres:dbname=x password=pw", "/data/lake")
    assert "pw" not in repr(got).replace("password", "")
    monkeypatch.delenv(lake.CATALOG_ENV, raising=False)
    with pytest.raises(ValueError, match=lake.CATALOG_ENV):
        open_lake()


@pytest.mark.parametrize(
    ("catalog", "without", "password"),
    [
        ("postgres:dbname=a user=u", "postgres:dbname=a user=u", None),
        ("postgres:dbname=a password=p user=u", "postgres:dbname=a user=u", "p"),
        ("postgres:dbname=a password = 'p q\\'r' user=u", "postgres:dbname=a user=u", "p q'r"),
        (
            "postgres:postgresql://u:p%40ss@h:5433/db?sslmode=require",
            "postgres:dbname=db host=h port=5433 user=u sslmode=require",
            "p@ss",
        ),
        ("/data/meta.ducklake", "/data/meta.ducklake", None),
    ],
)
def test_split_password(catalog: str, without: str, password: str | None) -> None:
    assert lake.split_password(catalog) == (without, password)


def test_redact() -> None:
    text = "at \"dbname=x password=abc user=u\" or postgresql://u:abc@h/db or password='a b'"
    assert "abc" not in lake.redact(text)
    assert "a b" not in lake.redact(text)
