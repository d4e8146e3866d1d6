"""Create the warehouse, or bring an older one up to this release's schema, in place.

The warehouse records its schema version in ``spotler_meta.schema_version`` (one row per
upgrade applied). :func:`ensure_schema` runs before every write:

- an empty database gets every table, view and the meta tables at :data:`CURRENT_VERSION`;
- a warehouse of an older release is migrated in one transaction with its rows
  (:mod:`~spotler_pipeline.warehouse.migrations`): either it is fully upgraded or untouched;
- views whose definition in code changed are re-created (their SQL hash is stored);
- a warehouse written by a *newer* release is refused rather than written in an old shape.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from spotler_pipeline.warehouse.account import META_SCHEMA
from spotler_pipeline.warehouse.catalog import ALL_TABLES
from spotler_pipeline.warehouse.migrations import (
    CURRENT_VERSION,
    MIGRATIONS,
    database_type,
    release,
)
from spotler_pipeline.warehouse.model import SCHEMA, Table
from spotler_pipeline.warehouse.sql import sql_string
from spotler_pipeline.warehouse.views import VIEW_COLUMN_DESCRIPTIONS, VIEWS

#: The version of a warehouse written by the first release, which kept no version.
FIRST_RELEASE_VERSION = 1

META_DDL = (
    f"CREATE SCHEMA IF NOT EXISTS {META_SCHEMA}",
    f"CREATE TABLE IF NOT EXISTS {META_SCHEMA}.schema_version ("
    "version INTEGER, release VARCHAR, applied_at TIMESTAMPTZ, description VARCHAR)",
    f"CREATE TABLE IF NOT EXISTS {META_SCHEMA}.account ("
    "fingerprint VARCHAR, claimed_at TIMESTAMPTZ)",
    f"CREATE TABLE IF NOT EXISTS {META_SCHEMA}.views (name VARCHAR, sql_sha256 VARCHAR)",
)


class NewerWarehouseError(RuntimeError):
    """The warehouse was written by a newer release than the one running."""


def schema_version(conn: duckdb.DuckDBPyConnection) -> int | None:
    """The warehouse's schema version; ``None`` for an empty database."""
    schemas = {
        r[0]
        for r in conn.execute(
            "SELECT schema_name FROM information_schema.schemata WHERE catalog_name = "
            "current_database()"
        ).fetchall()
    }
    if META_SCHEMA in schemas:
        row = conn.execute(f"SELECT max(version) FROM {META_SCHEMA}.schema_version").fetchone()
        if row is not None and row[0] is not None:
            return int(row[0])
    if SCHEMA in schemas and _tables(conn):
        return FIRST_RELEASE_VERSION
    return None


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create or upgrade the warehouse so it matches this release; rows are never lost."""
    version = schema_version(conn)
    if version is not None and version > CURRENT_VERSION:
        raise NewerWarehouseError(
            f"This warehouse has schema version {version}, written by a newer spotler_pipeline "
            f"than this one ({release()}, schema version {CURRENT_VERSION}). Upgrade the "
            "package; nothing was changed."
        )
    if version == CURRENT_VERSION and not _views_changed(conn) and not _tables_missing(conn):
        return
    with _transaction(conn):
        # Re-read inside the transaction: another process may have upgraded meanwhile.
        version = schema_version(conn)
        for statement in META_DDL:
            conn.execute(statement)
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        if version is None:
            _create_missing_tables(conn)
            _record(conn, CURRENT_VERSION, "new warehouse")
        else:
            for migration in MIGRATIONS:
                if migration.version > version:
                    migration.apply(conn)
                    _record(conn, migration.version, migration.description)
            _create_missing_tables(conn)
            _add_missing_columns(conn)
            # An upgraded warehouse describes its tables as this release does.
            for table in ALL_TABLES:
                _comment(conn, table)
        _refresh_views(conn)


@contextmanager
def _transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    conn.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")  # outside the try: a failed COMMIT has ended the transaction


def _record(conn: duckdb.DuckDBPyConnection, version: int, description: str) -> None:
    conn.execute(
        f"INSERT INTO {META_SCHEMA}.schema_version VALUES (?, ?, current_timestamp, ?)",
        [version, release(), description],
    )


def _tables(conn: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        r[0]
        for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
            "AND table_catalog = current_database()",
            [SCHEMA],
        ).fetchall()
    }


def _tables_missing(conn: duckdb.DuckDBPyConnection) -> bool:
    existing = _tables(conn)
    return any(t.name not in existing for t in ALL_TABLES) or any(v not in existing for v in VIEWS)


def _create_missing_tables(conn: duckdb.DuckDBPyConnection) -> None:
    existing = _tables(conn)
    for table in ALL_TABLES:
        if table.name not in existing:
            create_table(conn, table)


def create_table(conn: duckdb.DuckDBPyConnection, table: Table) -> None:
    """``CREATE TABLE`` for ``table`` with its table and column comments; the columns'
    storage compression only in a DuckDB file (DuckLake writes Parquet its own way)."""
    conn.execute(table.create_sql(compression=database_type(conn) == "duckdb"))
    _comment(conn, table)


def _comment(conn: duckdb.DuckDBPyConnection, table: Table) -> None:
    """The table's and its columns' COMMENTs as this release describes them (the Dagster UI
    and a notebook's ``duckdb_columns()`` show them)."""
    conn.execute(f"COMMENT ON TABLE {table.qualified_name} IS {sql_string(table.description)}")
    for col in table.columns:
        conn.execute(
            f'COMMENT ON COLUMN {table.qualified_name}."{col.name}" IS '
            f"{sql_string(table.describe(col))}"
        )


def _add_missing_columns(conn: duckdb.DuckDBPyConnection) -> None:
    """Columns declared in code but missing in the database are added (NULL for old rows);
    a migration step fills them where a better value is known."""
    for table in ALL_TABLES:
        have = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = ? "
                "AND table_name = ? AND table_catalog = current_database()",
                [SCHEMA, table.name],
            ).fetchall()
        }
        for col in table.columns:
            if col.name not in have:
                conn.execute(
                    f'ALTER TABLE {table.qualified_name} ADD COLUMN "{col.name}" {col.type}'
                )
                conn.execute(
                    f'COMMENT ON COLUMN {table.qualified_name}."{col.name}" IS '
                    f"{sql_string(table.describe(col))}"
                )


def _view_hashes() -> dict[str, str]:
    """Per view, a hash of its SQL and its column descriptions: either changing re-creates it."""
    return {
        name: hashlib.sha256(
            (sql + repr(sorted(VIEW_COLUMN_DESCRIPTIONS.get(name, {}).items()))).encode()
        ).hexdigest()
        for name, sql in VIEWS.items()
    }


def _views_changed(conn: duckdb.DuckDBPyConnection) -> bool:
    stored = dict(conn.execute(f"SELECT name, sql_sha256 FROM {META_SCHEMA}.views").fetchall())
    return stored != _view_hashes()


def _refresh_views(conn: duckdb.DuckDBPyConnection) -> None:
    """Re-create every view from code (in order: later views use earlier ones)."""
    describe = database_type(conn) == "duckdb"  # a DuckLake catalog keeps no view comments
    for name, sql in VIEWS.items():
        conn.execute(sql)
        for column, description in VIEW_COLUMN_DESCRIPTIONS.get(name, {}).items():
            if describe:
                conn.execute(
                    f'COMMENT ON COLUMN {SCHEMA}.{name}."{column}" IS {sql_string(description)}'
                )
    conn.execute(f"DELETE FROM {META_SCHEMA}.views")
    conn.executemany(f"INSERT INTO {META_SCHEMA}.views VALUES (?, ?)", list(_view_hashes().items()))
