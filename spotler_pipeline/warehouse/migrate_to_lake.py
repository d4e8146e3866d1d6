"""Copy a DuckDB-file warehouse into the DuckLake warehouse (``spotler-pipeline migrate-to-lake``).

Every schema of the file (``spotler`` and ``spotler_meta``: schema version, account, view
hashes) is copied with every table (its DDL, rows and comments) and view, in one DuckLake
transaction: the lake shows all of it or none of it. Before the commit, each lake table's row
count is checked against the file's, and again from a fresh read-only connection after it.

A file written by DuckDB 2.x (release 0.1.0) is refused, naming the command that converts it
(``spotler-pipeline convert-legacy``). The file is only read.

A lake that already holds rows in those schemas is refused unless ``replace=True``, which
drops the lake's tables and views there and writes the file's (in the same transaction; the
lake's earlier snapshots keep the old rows readable until they are expired).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from spotler_pipeline.settings import duckdb_path
from spotler_pipeline.warehouse.contact_key import (
    KEY_FILE_ENV,
    carry_contact_key,
    contact_key_path,
)
from spotler_pipeline.warehouse.lake import (
    LAKE_ALIAS,
    LakeSettings,
    open_lake,
    retry_on_conflict,
)
from spotler_pipeline.warehouse.legacy import refuse_legacy
from spotler_pipeline.warehouse.sql import sql_identifier, sql_string

SOURCE_ALIAS = "migration_source"


class MigrationError(RuntimeError):
    """The copy was refused or did not verify; the lake is unchanged."""


@dataclass(frozen=True)
class TableCopy:
    schema: str
    name: str
    rows: int

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass
class MigrationReport:
    """What :func:`migrate_to_lake` copied."""

    source: Path
    tables: list[TableCopy] = field(default_factory=list)
    views: list[str] = field(default_factory=list)
    replaced_rows: int = 0
    snapshot_id: int | None = None
    #: What became of the file's key of contact tags ("" when there was nothing to copy).
    contact_key: str = ""

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables)


def _qualified(catalog: str, schema: str, name: str) -> str:
    """``catalog."schema"."name"`` (the catalog is one of our own plain aliases)."""
    return f"{catalog}.{sql_identifier(schema)}.{sql_identifier(name)}"


def _rows(conn: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None) -> list:
    return conn.execute(sql, params or []).fetchall()


def default_source() -> Path:
    """The file warehouse the pipeline uses: ``SPOTLER_DUCKDB_PATH`` or its default."""
    return duckdb_path()


def order_views(views: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """``(schema, name, sql)`` views ordered so each comes after the views it names.

    Views are bound only when queried, but creating one checks the names it uses, and a
    failed statement would abort the surrounding transaction: so no trial and error here.
    """
    by_name = {name: v for v in views for name in (v[1],)}
    ordered: list[tuple[str, str, str]] = []
    state: dict[str, int] = {}

    def visit(v: tuple[str, str, str]) -> None:
        if state.get(v[1]) == 2:
            return
        if state.get(v[1]) == 1:
            return  # a name that merely looks like a dependency both ways; keep going
        state[v[1]] = 1
        for other, dep in by_name.items():
            if other != v[1] and re.search(rf"\b{re.escape(other)}\b", v[2]):
                visit(dep)
        state[v[1]] = 2
        ordered.append(v)

    for v in sorted(views):
        visit(v)
    return ordered


def migrate_to_lake(
    source: str | os.PathLike[str] | None = None,
    settings: LakeSettings | None = None,
    *,
    replace: bool = False,
    progress: Callable[[str], None] | None = None,
) -> MigrationReport:
    """Copy the file warehouse ``source`` into the lake ``settings`` (both default to the env).

    Raises :class:`MigrationError` (lake unchanged) if the lake already has rows and not
    ``replace``, or if a count does not match.
    """
    path = Path(source) if source is not None else default_source()
    if not path.is_file():
        raise MigrationError(f"there is no warehouse file at {path}")
    if settings is None:
        settings = LakeSettings.from_env()
        if settings is None:
            raise MigrationError(
                "SPOTLER_DUCKLAKE_CATALOG is not set: name the lake to copy into "
                "(and SPOTLER_DUCKLAKE_DATA_PATH for its files)"
            )
    say = progress or (lambda _msg: None)
    report = MigrationReport(source=path)
    refuse_legacy(path)

    conn = open_lake(settings, config={"preserve_insertion_order": False})
    try:
        conn.execute(f"ATTACH {sql_string(str(path))} AS {SOURCE_ALIAS} (READ_ONLY)")

        def attempt() -> None:
            report.tables.clear()
            report.views.clear()
            report.replaced_rows = 0
            conn.execute("BEGIN TRANSACTION")
            try:
                _copy(conn, report, replace=replace, say=say)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")  # a conflict here has rolled back already

        retry_on_conflict(
            attempt,
            attempts=5,
            on_retry=lambda n, exc: say(f"another writer committed first; retrying ({n})"),
        )
        report.snapshot_id = conn.execute(
            f"SELECT max(snapshot_id) FROM {LAKE_ALIAS}.snapshots()"
        ).fetchone()[0]  # type: ignore[index]
    finally:
        conn.close()
    _verify_committed(settings, report)
    report.contact_key = _carry_contact_key(path, settings)
    if report.contact_key:
        say(report.contact_key)
    return report


def _carry_contact_key(source: Path, settings: LakeSettings) -> str:
    """The file's key of contact tags copied to where the lake keeps its key, so contacts
    keep their tags; what was done, for the report."""
    try:
        target = contact_key_path(source, settings, os.environ.get(KEY_FILE_ENV))
    except ValueError as exc:
        return f"contact key not copied: {exc}"
    if carry_contact_key(contact_key_path(source, None), target):
        return f"contact key copied to {target} (contacts keep their tags)"
    return ""


def _copy(
    conn: duckdb.DuckDBPyConnection,
    report: MigrationReport,
    *,
    replace: bool,
    say: Callable[[str], None],
) -> None:
    src = SOURCE_ALIAS
    schemas = [
        r[0]
        for r in _rows(
            conn,
            "SELECT schema_name FROM duckdb_schemas() WHERE database_name = ? AND NOT internal "
            "ORDER BY schema_name",
            [src],
        )
    ]
    tables = _rows(
        conn,
        "SELECT schema_name, table_name, sql, comment FROM duckdb_tables() "
        "WHERE database_name = ? AND NOT internal ORDER BY schema_name, table_name",
        [src],
    )
    views = _rows(
        conn,
        "SELECT schema_name, view_name, sql, comment FROM duckdb_views() "
        "WHERE database_name = ? AND NOT internal ORDER BY schema_name, view_name",
        [src],
    )
    schemas = [s for s in schemas if s != "main" or any(t[0] == "main" for t in tables + views)]

    # What the lake has already in those schemas.
    existing_tables = [
        (s, t)
        for s, t in sorted(
            _rows(
                conn,
                "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ?",
                [LAKE_ALIAS],
            )
        )
        if s in schemas
    ]
    existing_views = [
        (s, v)
        for s, v in _rows(
            conn,
            "SELECT schema_name, view_name FROM duckdb_views() "
            "WHERE database_name = ? AND NOT internal",
            [LAKE_ALIAS],
        )
        if s in schemas
    ]
    occupied = []
    for s, t in existing_tables:
        (n,) = conn.execute(f"SELECT count(*) FROM {_qualified(LAKE_ALIAS, s, t)}").fetchone()  # type: ignore[misc]
        if n:
            occupied.append((f"{s}.{t}", int(n)))
    if occupied and not replace:
        listing = ", ".join(f"{name} ({n:,} rows)" for name, n in occupied[:8])
        more = f" and {len(occupied) - 8} more tables" if len(occupied) > 8 else ""
        raise MigrationError(
            f"the lake already has rows: {listing}{more}. Nothing was copied. "
            "Run again with --replace to overwrite them with the file's tables."
        )
    report.replaced_rows = sum(n for _, n in occupied)
    for s, v in existing_views:
        conn.execute(f"DROP VIEW {_qualified(LAKE_ALIAS, s, v)}")
    for s, t in existing_tables:
        conn.execute(f"DROP TABLE {_qualified(LAKE_ALIAS, s, t)}")

    for s in schemas:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {LAKE_ALIAS}.{sql_identifier(s)}")
    for s, t, sql, comment in tables:
        target = _qualified(LAKE_ALIAS, s, t)
        conn.execute(sql)  # "CREATE TABLE s.t(...)": into the lake, which is in USE
        conn.execute(f"INSERT INTO {target} SELECT * FROM {_qualified(src, s, t)}")
        if comment is not None:
            conn.execute(f"COMMENT ON TABLE {target} IS {sql_string(comment)}")
        for col, col_comment in _rows(
            conn,
            "SELECT column_name, comment FROM duckdb_columns() WHERE database_name = ? "
            "AND schema_name = ? AND table_name = ? AND comment IS NOT NULL",
            [src, s, t],
        ):
            conn.execute(
                f"COMMENT ON COLUMN {target}.{sql_identifier(col)} IS {sql_string(col_comment)}"
            )
        (copied,) = conn.execute(f"SELECT count(*) FROM {target}").fetchone()  # type: ignore[misc]
        (expected,) = conn.execute(f"SELECT count(*) FROM {_qualified(src, s, t)}").fetchone()  # type: ignore[misc]
        if copied != expected:
            raise MigrationError(
                f"{s}.{t}: {copied:,} rows in the lake, {expected:,} in the file; "
                "nothing was committed"
            )
        report.tables.append(TableCopy(s, t, int(copied)))
    comments = {(s, v): c for s, v, _sql, c in views}
    for s, v, sql in order_views([(s, v, sql) for s, v, sql, _c in views]):
        conn.execute(sql)
        if comments[(s, v)] is not None:
            conn.execute(
                f"COMMENT ON VIEW {_qualified(LAKE_ALIAS, s, v)} IS {sql_string(comments[(s, v)])}"
            )
        report.views.append(f"{s}.{v}")


def _verify_committed(settings: LakeSettings, report: MigrationReport) -> None:
    """Count again through a new read-only connection: what readers will see."""
    reader = open_lake(settings, read_only=True)
    try:
        wrong = []
        for t in report.tables:
            (n,) = reader.execute(
                f"SELECT count(*) FROM {sql_identifier(t.schema)}.{sql_identifier(t.name)}"
            ).fetchone()  # type: ignore[misc]
            if n != t.rows:
                wrong.append(f"{t.qualified_name}: {n:,} rows, expected {t.rows:,}")
        views = {
            f"{s}.{v}"
            for s, v in reader.execute(
                "SELECT schema_name, view_name FROM duckdb_views() "
                "WHERE database_name = current_database() AND NOT internal"
            ).fetchall()
        }
        wrong += [f"view {v} missing" for v in report.views if v not in views]
    finally:
        reader.close()
    if wrong:
        raise MigrationError("the lake does not match the file after the copy: " + "; ".join(wrong))


def format_report(report: MigrationReport) -> str:
    """The per-table counts as the CLI prints them."""
    width = max((len(t.qualified_name) for t in report.tables), default=10)
    lines = [f"copied {report.source} into the lake (snapshot {report.snapshot_id}):"]
    lines += [f"  {t.qualified_name:<{width}}  {t.rows:>12,} rows" for t in report.tables]
    lines.append(f"  {'total':<{width}}  {report.total_rows:>12,} rows")
    lines.append(f"  {len(report.views)} views: {', '.join(report.views) or '-'}")
    if report.replaced_rows:
        lines.append(f"  replaced {report.replaced_rows:,} rows the lake had before")
    if report.contact_key:
        lines.append(f"  {report.contact_key}")
    return "\n".join(lines)
