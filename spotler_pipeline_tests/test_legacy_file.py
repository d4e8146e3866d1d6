"""A warehouse written by release 0.1.0 (DuckDB 2.0.1) is refused by runs and readers, naming
``spotler-pipeline convert-legacy``, which converts it once for the pinned DuckDB.

Uses the committed fixture ``fixtures/warehouse_v0_1_0.duckdb.gz`` (written by the old
release, never regenerated). The conversion installs DuckDB 2.0.1 in a side folder from the
package registry the first time (hash-pinned); the tests that need it skip, saying why, only
when that install really fails.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from spotler_pipeline import cli, notebook
from spotler_pipeline.warehouse import legacy
from spotler_pipeline.warehouse.connection import open_warehouse

FIXTURES = Path(__file__).parent / "fixtures"
OLD_WAREHOUSE = FIXTURES / "warehouse_v0_1_0.duckdb.gz"
OLD_SCHEMA = FIXTURES / "schema_v0_1_0.sql"

needs_older_duckdb = pytest.mark.skipif(
    int(duckdb.__version__.split(".")[0]) >= 2,
    reason=f"the installed DuckDB {duckdb.__version__} reads 0.1.0's files: nothing to convert",
)
pytestmark = needs_older_duckdb


def _schema_objects() -> tuple[set[str], set[str]]:
    """Tables and views of release 0.1.0, from its DDL."""
    sql = OLD_SCHEMA.read_text()
    tables = set(re.findall(r"CREATE TABLE spotler\.(\w+)\(", sql))
    views = set(re.findall(r"CREATE VIEW spotler\.(\w+) AS", sql))
    return tables, views


@pytest.fixture(scope="session")
def side_duckdb() -> Path:
    """DuckDB 2.0.1 in the side folder (installed once with pip from the registry)."""
    try:
        return legacy.ensure_legacy_duckdb(legacy.DEFAULT_LEGACY_DUCKDB)
    except legacy.LegacyUpgradeError as exc:
        pytest.skip(
            f"cannot install DuckDB {legacy.DEFAULT_LEGACY_DUCKDB} for the conversion: {exc}"
        )


@pytest.fixture
def old_file(tmp_path: Path) -> Iterator[Path]:
    """A fresh copy of the 0.1.0 warehouse, as a user has it at data/spotler.duckdb."""
    target = tmp_path / "data" / "spotler.duckdb"
    target.parent.mkdir()
    with gzip.open(OLD_WAREHOUSE, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
    yield target


_DUMP = r"""
import datetime, json, sys
sys.path.insert(0, sys.argv[1])
import duckdb
def norm(v):  # DuckDB 2 and 1.5 name UTC differently (zoneinfo vs pytz); the instant is the data
    if isinstance(v, datetime.datetime) and v.tzinfo is not None:
        return v.astimezone(datetime.timezone.utc).isoformat()
    return v
c = duckdb.connect()
c.execute("SET TimeZone = 'UTC'")
c.execute("ATTACH '" + sys.argv[2] + "' AS w (READ_ONLY)")
out = {}
tables = "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'w'"
for s, t in c.execute(tables).fetchall():
    rows = c.execute(f'SELECT * FROM w."{s}"."{t}"').fetchall()
    out[f"{s}.{t}"] = sorted(repr(tuple(map(norm, r))) for r in rows)
print(json.dumps({"version": duckdb.__version__, "tables": out}))
"""


def _dump(path: Path, side: Path | None) -> dict:
    """Every table's rows (as sorted reprs), read by the side DuckDB or by our own."""
    if side is None:
        return json.loads(_run_dump([sys.executable, "-c", _DUMP, "", str(path)]))
    return json.loads(_run_dump([sys.executable, "-I", "-S", "-c", _DUMP, str(side), str(path)]))


def _run_dump(cmd: list[str]) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_first_release_file_is_refused_with_one_line_naming_the_command(
    old_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    header = legacy.read_header(old_file)
    assert header == legacy.FileHeader(storage_version=999, library_version="v2.0.1")
    assert legacy.needs_upgrade(old_file)
    # DuckDB 1.5.5 itself cannot read it ...
    probe = duckdb.connect()
    with pytest.raises(duckdb.Error, match="version number"):
        probe.execute(f"ATTACH '{old_file}' AS old (READ_ONLY)")
    probe.close()
    # ... so opening the warehouse, for a run or an analyst, says which command converts it
    original = old_file.read_bytes()
    monkeypatch.setenv("SPOTLER_DUCKDB_PATH", str(old_file))
    for opening in (lambda: open_warehouse(old_file, lock_timeout=0), notebook.connect):
        with pytest.raises(legacy.LegacyFileError) as caught:
            opening()
        message = str(caught.value)
        assert "\n" not in message
        assert f"`spotler-pipeline convert-legacy --database {old_file}`" in message
        assert "DuckDB 2.0.1" in message and "unchanged" in message
    assert old_file.read_bytes() == original
    assert sorted(p.name for p in old_file.parent.iterdir()) == ["spotler.duckdb"]


def test_current_and_missing_files_are_left_alone(tmp_path: Path) -> None:
    current = tmp_path / "current.duckdb"
    conn = open_warehouse(current)
    conn.execute("CREATE SCHEMA spotler; CREATE TABLE spotler.t AS SELECT 1 AS x")
    conn.close()
    before = current.read_bytes()
    assert not legacy.needs_upgrade(current)
    assert legacy.convert_legacy_file(current) is None
    assert current.read_bytes() == before
    assert legacy.convert_legacy_file(tmp_path / "missing.duckdb") is None
    not_duckdb = tmp_path / "notes.duckdb"
    not_duckdb.write_text("not a database")
    assert legacy.convert_legacy_file(not_duckdb) is None
    assert not list(tmp_path.glob(f"*{legacy.BACKUP_SUFFIX}"))


def test_the_command_converts_keeping_every_row_and_view(
    old_file: Path, side_duckdb: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = old_file.read_bytes()
    before = _dump(old_file, side_duckdb)
    assert before["version"] == "2.0.1"

    assert cli.main(["convert-legacy", "--database", str(old_file)]) == 0

    backup = old_file.with_name(old_file.name + legacy.BACKUP_SUFFIX)
    said = capsys.readouterr().out
    assert f"converted {old_file} (written by DuckDB 2.0.1)" in said
    assert f"the old file is kept as {backup}" in said
    assert backup.read_bytes() == original, "the old file is kept unchanged beside the new one"
    assert sorted(p.name for p in old_file.parent.iterdir()) == [
        "spotler.duckdb",
        "spotler.duckdb" + legacy.BACKUP_SUFFIX,
    ], "no export folder, half-built file or lock left behind"
    assert legacy.read_header(old_file).storage_version == legacy._own_storage_version()

    tables, views = _schema_objects()
    conn = open_warehouse(old_file, read_only=True, lock_timeout=0)
    try:
        got_tables = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'spotler'"
            ).fetchall()
        }
        got_views = {
            r[0]
            for r in conn.execute(
                "SELECT view_name FROM duckdb_views() WHERE schema_name = 'spotler'"
            ).fetchall()
        }
        assert got_tables == tables
        assert got_views == views
        for table in tables:
            (count,) = conn.execute(f"SELECT count(*) FROM spotler.{table}").fetchone()
            assert count == len(before["tables"][f"spotler.{table}"]), table
        for view in views:  # every view binds and runs on the converted tables
            conn.execute(f"SELECT count(*) FROM spotler.{view}").fetchone()
        assert conn.execute(
            "SELECT comment FROM duckdb_tables() WHERE table_name = 'mailings'"
        ).fetchone()[0], "table comments are carried over"
        assert (
            conn.execute(
                "SELECT count(*) FROM duckdb_columns() WHERE schema_name = 'spotler' "
                "AND comment IS NOT NULL"
            ).fetchone()[0]
            > 100
        ), "column comments are carried over"
    finally:
        conn.close()
    assert sum(len(rows) for rows in before["tables"].values()) > 4000
    after = _dump(old_file, None)
    assert after["version"] == duckdb.__version__
    assert after["tables"] == before["tables"], "every value survives the conversion"

    assert legacy.convert_legacy_file(old_file) is None, "converted once only"


def test_rows_only_in_the_old_wal_are_kept(old_file: Path, side_duckdb: Path) -> None:
    """0.1.0 stopped without a checkpoint: its last write is in ``spotler.duckdb.wal``."""
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import duckdb;"
        "c = duckdb.connect();"
        "c.execute('PRAGMA disable_checkpoint_on_shutdown');"
        "c.execute(\"SET checkpoint_threshold = '1GB'\");"
        'c.execute("ATTACH \'" + sys.argv[2] + "\' AS w");'
        "c.execute(\"INSERT INTO w.spotler.forms (id, name) VALUES ('wal-only', 'x')\");"
        "c.close()"
    )
    subprocess.run(
        [sys.executable, "-I", "-S", "-c", script, str(side_duckdb), str(old_file)], check=True
    )
    assert old_file.with_name(old_file.name + ".wal").exists()

    assert legacy.convert_legacy_file(old_file) is not None

    assert not old_file.with_name(old_file.name + ".wal").exists()
    conn = open_warehouse(old_file, read_only=True, lock_timeout=0)
    try:
        assert conn.execute(
            "SELECT count(*) FROM spotler.forms WHERE id = 'wal-only'"
        ).fetchone() == (1,)
    finally:
        conn.close()


def test_the_side_install_is_pinned_and_a_failed_one_says_what_to_run(
    old_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(legacy.LEGACY_DIR_ENV, str(tmp_path / "side"))
    original = old_file.read_bytes()
    asked: list[list[str]] = []

    def no_registry(*args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
        command = [str(a) for a in args[0]]  # type: ignore[union-attr]
        requirements = Path(command[command.index("-r") + 1])
        asked.append([*command, requirements.read_text()])
        return subprocess.CompletedProcess([], 1, "", "ERROR: No matching distribution found")

    monkeypatch.setattr(legacy.subprocess, "run", no_registry)
    said: list[str] = []
    with pytest.raises(legacy.LegacyUpgradeError) as caught:
        legacy.convert_legacy_file(old_file, say=said.append)
    (command,) = asked
    assert {"--require-hashes", "--only-binary=:all:", "--no-deps"} <= set(command)
    pinned = command[-1]
    assert pinned.startswith("duckdb==2.0.1 ")
    assert pinned.count("--hash=sha256:") == len(legacy.LEGACY_DUCKDB_WHEELS) > 0
    assert said and said[0].startswith(f"installing duckdb==2.0.1 into {tmp_path / 'side'}")
    message = str(caught.value)
    assert f"--target {tmp_path / 'side' / 'duckdb-2.0.1'} duckdb==2.0.1" in message
    assert "No matching distribution" in message
    assert "unchanged" in message
    assert old_file.read_bytes() == original
    assert sorted(p.name for p in old_file.parent.iterdir()) == ["spotler.duckdb"]


def test_a_conversion_that_dies_before_the_swap_leaves_the_old_file(
    old_file: Path, side_duckdb: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = old_file.read_bytes()

    def crash(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(legacy, "_swap", crash)
    with pytest.raises(KeyboardInterrupt):
        legacy.convert_legacy_file(old_file)
    assert old_file.read_bytes() == original
    assert sorted(p.name for p in old_file.parent.iterdir()) == ["spotler.duckdb"]

    monkeypatch.undo()
    assert legacy.convert_legacy_file(old_file) is not None
