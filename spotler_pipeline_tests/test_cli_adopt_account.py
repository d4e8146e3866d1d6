"""``spotler-pipeline adopt-account``: after a key rotation, the warehouse records the new
key's account, only with ``--yes``, never printing the key; on the DuckDB file and the lake."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from spotler_pipeline import cli
from spotler_pipeline.warehouse import ensure_schema
from spotler_pipeline.warehouse.account import (
    account_fingerprint,
    claim_account,
    recorded_account,
)
from spotler_pipeline.warehouse.connection import open_warehouse
from spotler_pipeline.warehouse.lake import LakeSettings, open_lake

OLD_KEY, NEW_KEY = "old-consumer-key-123", "new-consumer-key-456"
OLD, NEW = account_fingerprint(OLD_KEY), account_fingerprint(NEW_KEY)


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("SPOTLER_DUCKDB_PATH", "SPOTLER_DUCKLAKE_CATALOG", "SPOTLER_DUCKLAKE_DATA_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPOTLER_CONSUMER_KEY", NEW_KEY)
    monkeypatch.chdir(tmp_path)  # the default data/spotler.duckdb is the test's own


def _set_up(conn: duckdb.DuckDBPyConnection, account: str | None) -> None:
    """Give a new warehouse (file or lake) its schema and, unless None, an account; closes it."""
    ensure_schema(conn)
    if account is not None:
        claim_account(conn, account)
    conn.close()


def _account_of(conn: duckdb.DuckDBPyConnection) -> str | None:
    """The account the warehouse (file or lake) records; closes it."""
    try:
        return recorded_account(conn)
    finally:
        conn.close()


def _file(path: Path, account: str | None) -> Path:
    _set_up(open_warehouse(path), account)
    return path


def _recorded(path: Path) -> str | None:
    return _account_of(open_warehouse(path, read_only=True))


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["adopt-account", *args])
    out, err = capsys.readouterr()
    for text in (out, err):
        assert NEW_KEY not in text and OLD_KEY not in text
    return code, out, err


def test_without_yes_it_only_says_what_it_would_change(tmp_path, capsys) -> None:
    path = _file(tmp_path / "w.duckdb", OLD)
    code, out, err = _run(capsys, "--database", str(path))
    assert code == 1
    assert OLD in out and NEW in out and str(path) in out and "same Spotler account" in out
    assert "Nothing changed" in err and "--yes" in err
    assert _recorded(path) == OLD


def test_with_yes_the_new_keys_account_is_recorded_and_rows_stay(tmp_path, capsys) -> None:
    path = _file(tmp_path / "w.duckdb", OLD)
    conn = open_warehouse(path)
    conn.execute(
        "INSERT INTO spotler.mailing_opens (send_day, mailing_id, contact_encrypted_id) "
        "VALUES ('2026-06-01', 'M1', 'c1')"
    )
    conn.close()
    code, out, _ = _run(capsys, "--database", str(path), "--yes")
    assert code == 0 and f"now records account {NEW} (was {OLD})" in out
    assert _recorded(path) == NEW
    conn = open_warehouse(path, read_only=True)
    assert conn.execute("SELECT count(*) FROM spotler.mailing_opens").fetchone() == (1,)
    conn.close()
    # A write with the new key is accepted now (one with the old key would be refused).
    code, out, _ = _run(capsys, "--database", str(path))
    assert code == 0 and "already records" in out


def test_the_default_file_is_the_resources_default(tmp_path, capsys, monkeypatch) -> None:
    _file(tmp_path / "data" / "spotler.duckdb", OLD)
    assert _run(capsys, "--yes")[0] == 0
    assert _recorded(tmp_path / "data" / "spotler.duckdb") == NEW
    elsewhere = _file(tmp_path / "elsewhere.duckdb", OLD)
    monkeypatch.setenv("SPOTLER_DUCKDB_PATH", str(elsewhere))
    assert _run(capsys, "--yes")[0] == 0
    assert _recorded(elsewhere) == NEW


def test_nothing_to_adopt_before_the_first_write(tmp_path, capsys) -> None:
    path = _file(tmp_path / "w.duckdb", None)
    code, out, _ = _run(capsys, "--database", str(path), "--yes")
    assert code == 0 and "records no account yet" in out
    assert _recorded(path) is None


@pytest.mark.parametrize("missing", ["key", "file"])
def test_a_missing_key_or_file_is_one_line_and_creates_nothing(
    missing, tmp_path, capsys, monkeypatch
) -> None:
    path = tmp_path / "w.duckdb"
    if missing == "key":
        _file(path, OLD)
        monkeypatch.delenv("SPOTLER_CONSUMER_KEY")
    code, out, err = _run(capsys, "--database", str(path), "--yes")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert ("SPOTLER_CONSUMER_KEY" if missing == "key" else "no warehouse file") in err
    if missing == "file":
        assert not path.exists()
    else:
        assert _recorded(path) == OLD


def test_database_and_catalog_together_are_refused(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["adopt-account", "--database", "x.duckdb", "--catalog", "y.ducklake"])
    assert info.value.code == 2
    assert "one warehouse" in capsys.readouterr().err


def _lake(tmp_path: Path, account: str) -> LakeSettings:
    """A DuckLake whose catalog is a DuckDB file (no PostgreSQL needed)."""
    settings = LakeSettings(str(tmp_path / "catalog.ducklake"), str(tmp_path / "lake-data"))
    _set_up(open_lake(settings), account)
    return settings


def _lake_account(settings: LakeSettings) -> str | None:
    return _account_of(open_lake(settings, read_only=True))


@pytest.mark.parametrize("named_by", ["argument", "environment"])
def test_the_lake_when_a_catalog_is_named(named_by, tmp_path, capsys, monkeypatch) -> None:
    lake = _lake(tmp_path, OLD)
    decoy = _file(tmp_path / "data" / "spotler.duckdb", OLD)  # the file is not the warehouse
    if named_by == "argument":
        args = ["--catalog", lake.catalog, "--data-path", str(lake.data_path)]
    else:
        monkeypatch.setenv("SPOTLER_DUCKLAKE_CATALOG", lake.catalog)
        monkeypatch.setenv("SPOTLER_DUCKLAKE_DATA_PATH", str(lake.data_path))
        args = []
    code, out, _ = _run(capsys, *args)
    assert code == 1 and "DuckLake" in out and _lake_account(lake) == OLD
    code, out, _ = _run(capsys, *args, "--yes")
    assert code == 0 and _lake_account(lake) == NEW
    assert _recorded(decoy) == OLD
    # --database picks the file, whatever the environment says
    if named_by == "environment":
        assert _run(capsys, "--database", str(decoy), "--yes")[0] == 0
        assert _recorded(decoy) == NEW


def test_an_unopenable_lake_is_one_line(tmp_path, capsys) -> None:
    catalog = str(tmp_path / "no-such-lake.ducklake")
    code, out, err = _run(capsys, "--catalog", catalog)
    assert code == 2 and out == "" and "cannot open" in err and "nothing changed" in err
    assert not Path(catalog).exists()


def test_the_mismatch_error_names_this_command(capsys) -> None:
    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA spotler_meta")
    conn.execute("CREATE TABLE spotler_meta.account (fingerprint VARCHAR, claimed_at TIMESTAMPTZ)")
    claim_account(conn, OLD)
    with pytest.raises(Exception, match="spotler-pipeline adopt-account"):
        claim_account(conn, NEW)
    with pytest.raises(SystemExit) as info:
        cli.main(["adopt-account", "--help"])
    assert info.value.code == 0
