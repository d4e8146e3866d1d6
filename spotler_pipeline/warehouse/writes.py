"""Atomic writes: replace a partition window (or a whole table) in one transaction.

Everything a run fetched is already staged on local disk when these run, so the DuckDB
write lock is held only for a delete and a bulk insert of the staged rows. If anything fails the
transaction is rolled back and every table is exactly as it was before the run.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from spotler_pipeline.warehouse.ddl import ensure_schema
from spotler_pipeline.warehouse.model import Table
from spotler_pipeline.warehouse.staging import read_staged

#: DuckDB settings while a bulk write runs (restored afterwards). The rows of a partition have
#: no order worth keeping, and without it DuckDB compresses row groups on every thread at
#: once (compressing is most of an insert's cost). The memory cap stops the buffer manager
#: from keeping every block it wrote cached, which made a run's memory grow with the size of
#: the partition; an insert streams, so it needs far less.
BULK_WRITE_SETTINGS: Mapping[str, str] = {
    "preserve_insertion_order": "false",
    "memory_limit": "48MB",
}


@contextmanager
def bulk_write_settings(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Apply :data:`BULK_WRITE_SETTINGS` on ``conn`` for the duration of the block."""
    previous = {
        name: conn.execute("SELECT current_setting(?)", [name]).fetchone()[0]  # type: ignore[index]
        for name in BULK_WRITE_SETTINGS
    }
    for name, value in BULK_WRITE_SETTINGS.items():
        conn.execute(f"SET {name} = '{value}'")
    try:
        yield
    finally:
        for name, value in previous.items():
            conn.execute(f"SET {name} = '{value}'")


def insert_staged(
    conn: duckdb.DuckDBPyConnection, target: str, table: Table, files: Sequence[Path]
) -> int:
    """Append the rows staged for ``table`` in ``files`` to ``target``; return the count.

    The staged Arrow stream is read batch by batch, so memory stays flat whatever the size.
    """
    if not files:
        return 0
    cols = ", ".join(f'"{c}"' for c in table.column_names)
    view = f"_staged_{table.name}"
    conn.register(view, read_staged(files, table.arrow_schema))
    try:
        row = conn.execute(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {view}").fetchone()
    finally:
        conn.unregister(view)
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class Replacement:
    """New content for ``table``: the staged ``files`` replace its rows in the window."""

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
    with bulk_write_settings(conn):
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
    inserted = insert_staged(conn, table.qualified_name, table, rep.files)
    return WriteResult(table.name, int(deleted[0]) if deleted else 0, inserted)


@dataclass(frozen=True)
class PresenceResult(WriteResult):
    """Outcome of :func:`merge_presence` for one table.

    ``rows_inserted`` counts the rows Spotler listed now (new or seen again), ``rows_new``
    those never seen before, ``rows_gone`` those newly marked ``present = false``.
    """

    rows_new: int = 0
    rows_gone: int = 0


def merge_presence(
    conn: duckdb.DuckDBPyConnection, replacements: Sequence[Replacement]
) -> list[PresenceResult]:
    """Merge a complete listing into tables that remember what disappeared, atomically.

    For each table (keyed by its ``primary_key``, with columns ``present``,
    ``first_seen_at`` and ``last_seen_at``) the staged rows are the whole current listing:
    they replace the stored rows with the same key, keeping the stored ``first_seen_at``;
    stored rows whose key is not in the listing are kept as they were but marked
    ``present = false``. Every table is written in one transaction.
    """
    ensure_schema(conn)
    results: list[PresenceResult] = []
    conn.execute("BEGIN TRANSACTION")
    try:
        for rep in replacements:
            results.append(_merge_one(conn, rep))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return results


def _merge_one(conn: duckdb.DuckDBPyConnection, rep: Replacement) -> PresenceResult:
    table = rep.table
    for needed in ("present", "first_seen_at", "last_seen_at"):
        table.column(needed)  # raises KeyError naming the table
    target = table.qualified_name
    cols = ", ".join(f'"{c}"' for c in table.column_names)
    match = " AND ".join(f'n."{k}" IS NOT DISTINCT FROM t."{k}"' for k in table.primary_key)
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE _presence_new AS SELECT {cols} FROM {target} LIMIT 0"
    )
    insert_staged(conn, "_presence_new", table, rep.files)
    counts = conn.execute(
        f"SELECT count(*), count(*) FILTER (WHERE NOT EXISTS "
        f"(SELECT 1 FROM {target} t WHERE {match})) FROM _presence_new n"
    ).fetchone()
    listed, new = (int(counts[0]), int(counts[1])) if counts else (0, 0)
    # Keep when each item was first seen; everything else comes from the new listing.
    conn.execute(
        f"UPDATE _presence_new n SET first_seen_at = t.first_seen_at FROM {target} t "
        f"WHERE {match} AND t.first_seen_at IS NOT NULL"
    )
    gone = conn.execute(
        f"UPDATE {target} t SET present = false WHERE t.present IS DISTINCT FROM false "
        f"AND NOT EXISTS (SELECT 1 FROM _presence_new n WHERE {match})"
    ).fetchone()
    conn.execute(
        f"DELETE FROM {target} t WHERE EXISTS (SELECT 1 FROM _presence_new n WHERE {match})"
    )
    conn.execute(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM _presence_new")
    conn.execute("DROP TABLE _presence_new")
    return PresenceResult(
        table.name,
        rows_deleted=0,
        rows_inserted=listed,
        rows_new=new,
        rows_gone=int(gone[0]) if gone else 0,
    )


def replace_rows_of(
    conn: duckdb.DuckDBPyConnection,
    replacements: Sequence[Replacement],
    start: date,
    end: date,
    column: str,
    values: Sequence[str],
) -> list[WriteResult]:
    """Like :func:`replace_window`, but only for the rows whose ``column`` is in ``values``.

    Used to refresh a few named contacts inside a partition without touching the other
    contacts stored there. All tables are written in one transaction.
    """
    ensure_schema(conn)
    keys = [str(v) for v in values]
    results: list[WriteResult] = []
    with bulk_write_settings(conn):
        conn.execute("BEGIN TRANSACTION")
        try:
            for rep in replacements:
                table = rep.table
                if table.partition_column is None:
                    raise ValueError(f"{table.qualified_name} is not partitioned")
                table.column(column)
                deleted = conn.execute(
                    f'DELETE FROM {table.qualified_name} WHERE "{table.partition_column}" >= ? '
                    f'AND "{table.partition_column}" < ? '
                    f'AND "{column}" IN (SELECT unnest(?::VARCHAR[]))',
                    [start, end, keys],
                ).fetchone()
                inserted = insert_staged(conn, table.qualified_name, table, rep.files)
                results.append(WriteResult(table.name, int(deleted[0]) if deleted else 0, inserted))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return results
