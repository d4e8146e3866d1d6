"""Atomic writes: replace a partition window (or a whole table) in one transaction.

Everything a run fetched is already staged on local disk when these run, so the DuckDB
write lock is held only for a delete and a bulk insert from Parquet. If anything fails the
transaction is rolled back and every table is exactly as it was before the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from spotler_pipeline.warehouse.ddl import ensure_schema
from spotler_pipeline.warehouse.model import Table


@dataclass(frozen=True)
class Replacement:
    """New content for ``table``: the staged Parquet ``files`` replace its rows in the window."""

    table: Table
    files: Sequence[Path] = field(default_factory=tuple)


@dataclass(frozen=True)
class WriteResult:
    table: str
    rows_deleted: int
    rows_inserted: int


def replace_window(
    conn: duckdb.DuckDBPyConnection,
    replacements: Sequence[Replacement],
    start: date | None,
    end: date | None,
) -> list[WriteResult]:
    """Replace rows with ``start <= partition_column < end`` of each table, atomically.

    With ``start``/``end`` both ``None`` the tables are replaced as a whole. All tables are
    written in a single transaction: either every table has its new rows, or none changed.
    """
    if (start is None) != (end is None):
        raise ValueError("give both start and end of the window, or neither")
    ensure_schema(conn)
    results: list[WriteResult] = []
    conn.execute("BEGIN TRANSACTION")
    try:
        for rep in replacements:
            results.append(_replace_one(conn, rep, start, end))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return results


def _replace_one(
    conn: duckdb.DuckDBPyConnection, rep: Replacement, start: date | None, end: date | None
) -> WriteResult:
    table = rep.table
    if start is not None:
        if table.partition_column is None:
            raise ValueError(f"{table.qualified_name} is not partitioned")
        deleted = conn.execute(
            f'DELETE FROM {table.qualified_name} WHERE "{table.partition_column}" >= ? '
            f'AND "{table.partition_column}" < ?',
            [start, end],
        ).fetchone()
    else:
        deleted = conn.execute(f"DELETE FROM {table.qualified_name}").fetchone()
    inserted = 0
    if rep.files:
        cols = ", ".join(f'"{c}"' for c in table.column_names)
        row = conn.execute(
            f"INSERT INTO {table.qualified_name} ({cols}) SELECT {cols} FROM read_parquet(?)",
            [[str(p) for p in rep.files]],
        ).fetchone()
        inserted = int(row[0]) if row else 0
    return WriteResult(table.name, int(deleted[0]) if deleted else 0, inserted)
