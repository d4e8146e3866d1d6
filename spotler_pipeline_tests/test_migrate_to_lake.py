"""``spotler-pipeline migrate-to-lake``: a file warehouse (0.1.0's, DuckDB 2) into a lake."""

from __future__ import annotations

import gzip
import re
import shutil
import stat
from pathlib import Path

import duckdb
import pytest

from spotler_pipeline import cli
from spotler_pipeline.warehouse import legacy
from spotler_pipeline.warehouse import migrate_to_lake as mig
from spotler_pipeline.warehouse.connection import open_warehouse
from spotler_pipeline.warehouse.contact_key import contact_key_path, load_contact_key
from spotler_pipeline.warehouse.lake import CATALOG_ENV, DATA_PATH_ENV, LakeSettings, open_lake

FIXTURES = Path(__file__).parent / "fixtures"


def _tables_and_views(conn: duckdb.DuckDBPyConnection) -> tuple[dict[str, int], set[str]]:
    tables = {
        f"{s}.{t}": conn.execute(f'SELECT count(*) FROM "{s}"."{t}"').fetchone()[0]
        for s, t in conn.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() "
            "WHERE database_name = current_database()"
        ).fetchall()
    }
    views = {
        f"{s}.{v}"
        for s, v in conn.execute(
            "SELECT schema_name, view_name FROM duckdb_views() "
            "WHERE database_name = current_database() AND NOT internal"
        ).fetchall()
    }
    return tables, views


def _last_snapshot(settings: LakeSettings) -> int:
    conn = open_lake(settings, read_only=True)
    try:
        return conn.execute("SELECT max(snapshot_id) FROM lake.snapshots()").fetchone()[0]
    finally:
        conn.close()


@pytest.fixture
def first_release_file(tmp_path: Path) -> Path:
    """The 0.1.0 warehouse (written by DuckDB 2.0.1) at the default place under tmp."""
    if int(duckdb.__version__.split(".")[0]) >= 2:
        pytest.skip(f"DuckDB {duckdb.__version__} reads 0.1.0's file: no conversion to test")
    try:
        legacy.ensure_legacy_duckdb(legacy.DEFAULT_LEGACY_DUCKDB)
    except legacy.LegacyUpgradeError as exc:
        pytest.skip(f"cannot install DuckDB 2.0.1 to convert the 0.1.0 file: {exc}")
    target = tmp_path / "data" / "spotler.duckdb"
    target.parent.mkdir()
    with gzip.open(FIXTURES / "warehouse_v0_1_0.duckdb.gz", "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return target


def test_the_first_release_warehouse_moves_into_the_lake(
    first_release_file: Path,
    lake_settings: LakeSettings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SPOTLER_DUCKDB_PATH", str(first_release_file))
    monkeypatch.setenv(CATALOG_ENV, lake_settings.catalog)
    monkeypatch.setenv(DATA_PATH_ENV, lake_settings.data_path)

    assert cli.main(["migrate-to-lake"]) == 1
    assert "spotler-pipeline convert-legacy" in capsys.readouterr().err
    assert cli.main(["convert-legacy"]) == 0
    assert "duckdb2-backup" in capsys.readouterr().out
    assert cli.main(["migrate-to-lake"]) == 0
    out, err = capsys.readouterr()
    source = open_warehouse(first_release_file, read_only=True, lock_timeout=0)
    try:
        file_tables, file_views = _tables_and_views(source)
    finally:
        source.close()
    schema_sql = (FIXTURES / "schema_v0_1_0.sql").read_text()
    assert {t.split(".")[1] for t in file_tables} == set(
        re.findall(r"CREATE TABLE spotler\.(\w+)\(", schema_sql)
    )
    assert len(file_views) == 10
    assert sum(file_tables.values()) > 4000

    reader = open_lake(read_only=True)
    try:
        lake_tables, lake_views = _tables_and_views(reader)
        for view in lake_views:  # the views bind and run on the lake's tables
            reader.execute(f"SELECT count(*) FROM {view}").fetchone()
        comment = "SELECT comment FROM duckdb_tables() WHERE table_name = 'mailing_opens'"
        assert reader.execute(comment).fetchone()[0].startswith("One row per open")
    finally:
        reader.close()
    assert lake_tables == file_tables
    assert lake_views == file_views
    for name, rows in file_tables.items():  # every count printed
        assert re.search(rf"^\s+{re.escape(name)}\s+{rows:,}\s+rows$", out, re.M), name
    assert re.search(rf"total\s+{sum(file_tables.values()):,} rows", out)


def test_a_lake_with_rows_is_refused_unless_replace(
    tmp_path: Path, lake_settings: LakeSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "w.duckdb"
    conn = open_warehouse(source)
    conn.execute("CREATE SCHEMA spotler")
    conn.execute("CREATE TABLE spotler.mailings AS SELECT range AS id FROM range(50)")
    conn.close()

    file_key = load_contact_key(contact_key_path(source, None))

    first = mig.migrate_to_lake(source, lake_settings)
    assert [(t.qualified_name, t.rows) for t in first.tables] == [("spotler.mailings", 50)]
    # the lake's contacts keep the tags the file gave them
    lake_key = contact_key_path(source, lake_settings)
    assert "contact key copied" in first.contact_key
    assert load_contact_key(lake_key) == file_key
    assert stat.S_IMODE(lake_key.stat().st_mode) == 0o600
    before = _last_snapshot(lake_settings)

    with pytest.raises(mig.MigrationError, match=r"already has rows: spotler.mailings \(50 rows\)"):
        mig.migrate_to_lake(source, lake_settings)
    code = cli.main(
        [
            "migrate-to-lake",
            "--database",
            str(source),
            "--catalog",
            lake_settings.catalog,
            "--data-path",
            lake_settings.data_path,
        ]
    )
    assert code == 1
    assert "--replace" in capsys.readouterr().err
    assert _last_snapshot(lake_settings) == before, "a refusal commits nothing"

    again = mig.migrate_to_lake(source, lake_settings, replace=True)
    assert again.replaced_rows == 50
    assert again.contact_key == ""  # the lake's key is left as it is
    reader = open_lake(lake_settings, read_only=True)
    try:
        assert _tables_and_views(reader) == ({"spotler.mailings": 50}, set())
    finally:
        reader.close()


def test_every_schema_view_and_comment_is_copied(
    tmp_path: Path, lake_settings: LakeSettings
) -> None:
    source = tmp_path / "w.duckdb"
    conn = open_warehouse(source)
    conn.execute("CREATE SCHEMA spotler; CREATE SCHEMA spotler_meta")
    conn.execute("CREATE TABLE spotler.opens (day DATE NOT NULL, tags VARCHAR[], doc JSON)")
    conn.execute(
        "INSERT INTO spotler.opens VALUES ('2026-01-01', ['a'], '{\"k\": 1}'), "
        "('2026-01-02', [], NULL)"
    )
    conn.execute("COMMENT ON TABLE spotler.opens IS 'one row per open'")
    conn.execute("COMMENT ON COLUMN spotler.opens.day IS 'the day'")
    conn.execute("CREATE TABLE spotler_meta.schema_version AS SELECT 2 AS version")
    # "a_daily" reads "z_base": created in name order it would not bind.
    conn.execute("CREATE VIEW spotler.z_base AS SELECT day FROM opens")
    conn.execute(
        "CREATE VIEW spotler.a_daily AS SELECT day, count(*) AS n FROM z_base GROUP BY day"
    )
    conn.execute("COMMENT ON VIEW spotler.a_daily IS 'opens per day'")
    conn.close()

    report = mig.migrate_to_lake(source, lake_settings)
    assert report.views == ["spotler.z_base", "spotler.a_daily"]

    reader = open_lake(lake_settings, read_only=True)
    try:
        assert _tables_and_views(reader) == (
            {"spotler.opens": 2, "spotler_meta.schema_version": 1},
            {"spotler.z_base", "spotler.a_daily"},
        )
        assert reader.execute("SELECT sum(n) FROM spotler.a_daily").fetchone() == (2,)
        assert reader.execute("SELECT tags, doc FROM spotler.opens ORDER BY day").fetchall() == [
            (["a"], '{"k": 1}'),
            ([], None),
        ]
        comments = reader.execute(
            "SELECT (SELECT comment FROM duckdb_tables() WHERE table_name = 'opens'), "
            "(SELECT comment FROM duckdb_columns() WHERE table_name = 'opens' "
            "AND column_name = 'day'), "
            "(SELECT comment FROM duckdb_views() WHERE view_name = 'a_daily')"
        ).fetchone()
        assert comments == ("one row per open", "the day", "opens per day")
    finally:
        reader.close()


def test_a_copy_that_fails_midway_leaves_the_lake_as_it_was(
    tmp_path: Path, lake_settings: LakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "w.duckdb"
    conn = open_warehouse(source)
    conn.execute("CREATE SCHEMA spotler")
    conn.execute("CREATE TABLE spotler.mailings AS SELECT range AS id FROM range(50)")
    conn.execute("CREATE VIEW spotler.v AS SELECT count(*) FROM mailings")
    conn.close()
    setup = open_lake(lake_settings)
    setup.close()
    before = _last_snapshot(lake_settings)

    def die(views: list) -> list:
        raise RuntimeError("killed while copying the views")

    monkeypatch.setattr(mig, "order_views", die)
    with pytest.raises(RuntimeError, match="killed"):
        mig.migrate_to_lake(source, lake_settings)
    assert _last_snapshot(lake_settings) == before
    reader = open_lake(lake_settings, read_only=True)
    try:
        assert _tables_and_views(reader) == ({}, set())
    finally:
        reader.close()


def test_without_a_lake_the_command_says_what_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(CATALOG_ENV, raising=False)
    monkeypatch.delenv(DATA_PATH_ENV, raising=False)
    assert cli.main(["migrate-to-lake", "--database", str(tmp_path / "x.duckdb")]) == 2
    assert CATALOG_ENV in capsys.readouterr().err


def test_a_missing_file_is_a_clear_error(lake_settings: LakeSettings, tmp_path: Path) -> None:
    with pytest.raises(mig.MigrationError, match="no warehouse file"):
        mig.migrate_to_lake(tmp_path / "missing.duckdb", lake_settings)
