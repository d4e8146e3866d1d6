"""Create the ``spotler`` schema, its tables (with comments) and views, idempotently."""

from __future__ import annotations

import duckdb

from spotler_pipeline.warehouse.catalog import ALL_TABLES
from spotler_pipeline.warehouse.model import SCHEMA, Table
from spotler_pipeline.warehouse.views import VIEWS


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create whatever is missing; existing tables and their rows are left alone."""
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    existing = {
        row[0]
        for row in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [SCHEMA]
        ).fetchall()
    }
    for table in ALL_TABLES:
        if table.name not in existing:
            _create(conn, table)
    for name, sql in VIEWS.items():
        if name not in existing:
            conn.execute(sql)


def _create(conn: duckdb.DuckDBPyConnection, table: Table) -> None:
    conn.execute(table.create_sql())
    conn.execute(f"COMMENT ON TABLE {table.qualified_name} IS {_quote(table.description)}")
    for col in table.columns:
        conn.execute(
            f'COMMENT ON COLUMN {table.qualified_name}."{col.name}" IS {_quote(col.description)}'
        )
