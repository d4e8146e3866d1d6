"""Atomic writes: replace a partition window (or a whole table) in one transaction.

Everything a run fetched is already staged on local disk when these run, so the DuckDB
write lock is held only for a delete and a bulk insert of the staged rows. If anything fails the
transaction is rolled back and every table is exactly as it was before the run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from spotler_pipeline.warehouse.account import claim_account
from spotler_pipeline.warehouse.ddl import ensure_schema
from spotler_pipeline.warehouse.model import SCHEMA, Table

#: DuckDB settings while a bulk write runs (restored afterwards). The rows of a partition have
#: no order worth keeping, and without it DuckDB compresses row groups on every thread at
#: once (compressing is most of an insert's cost).
BULK_WRITE_SETTINGS: Mapping[str, str] = {"preserve_insertion_order": "false"}

#: The memory a write's insert may use on top of what the transaction holds already
#: (``WarehouseResource.write_memory_limit``'s default).
DEFAULT_INSERT_MEMORY_LIMIT = "48MB"


@dataclass(frozen=True)
class WriteMemory:
    """How much memory DuckDB may use while a write replaces rows.

    A delete cannot spill: DuckDB keeps ~10 bytes per deleted row in memory until the
    commit, so the daily refresh of 30 send days of a large account needs more than a small
    fixed cap allows. So deletes run under
    ``ceiling`` alone. An insert streams; uncapped, DuckDB would keep every block it wrote
    cached and a run's memory would grow with the partition. So each insert may use
    ``insert`` on top of what the transaction holds when it starts (its deletes), never
    above ``ceiling``.

    ``ceiling`` is the user's ``memory_limit`` (``connection_config``); ``None``: DuckDB's
    own default (80% of the machine's memory). ``insert`` ``None``: inserts run under the
    ceiling too.
    """

    insert: str | None = DEFAULT_INSERT_MEMORY_LIMIT
    ceiling: str | None = None

    def for_delete(self, conn: duckdb.DuckDBPyConnection) -> None:
        """Lift the connection's cap to the ceiling, for deletes (and updates)."""
        ceiling = self.ceiling
        if ceiling is None:
            # RESET alone changes what current_setting() shows but not the buffer pool's
            # limit (DuckDB 1.5.5); setting the default it shows applies it.
            conn.execute("RESET memory_limit")
            ceiling = _current_memory_limit(conn)
        set_memory_limit(conn, ceiling)

    def for_insert(self, conn: duckdb.DuckDBPyConnection) -> None:
        """Cap the next insert at what the transaction holds plus :attr:`insert`.

        Never below what is in use: a ``SET memory_limit`` that DuckDB cannot meet fails,
        and inside the transaction that would abort the write.
        """
        self.for_delete(conn)
        if self.insert is None:
            return
        row = conn.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchone()
        used = int(row[0] or 0) if row else 0
        limit = min(used + memory_bytes(self.insert), memory_limit_bytes(conn))
        set_memory_limit(conn, f"{limit}B")


_UNITS = {
    "": 1,
    "b": 1,
    "byte": 1,
    "bytes": 1,
    **{f"{p}{s}": 1000**i for i, p in enumerate("kmgt", 1) for s in ("", "b")},
    **{f"{p}ib": 1024**i for i, p in enumerate("kmgt", 1)},
}


def memory_bytes(text: str) -> int:
    """A DuckDB memory size (``'48MB'``, ``'91.5 MiB'``, ``'1GB'``) in bytes, with DuckDB's
    units (KB, MB, GB, TB = 1000^i; KiB, MiB, GiB, TiB = 1024^i)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f"not a memory size: {text!r} (e.g. '48MB', '1GB', '512MiB')")
    return int(float(match.group(1)) * _UNITS[unit])


def _current_memory_limit(conn: duckdb.DuckDBPyConnection) -> str:
    return conn.execute("SELECT current_setting('memory_limit')").fetchone()[0]  # type: ignore[index]


def memory_limit_bytes(conn: duckdb.DuckDBPyConnection) -> int:
    """The connection's DuckDB ``memory_limit`` in bytes."""
    return memory_bytes(_current_memory_limit(conn))


def set_memory_limit(conn: duckdb.DuckDBPyConnection, value: str) -> None:
    """Cap the memory DuckDB may use on ``conn`` (a DuckDB size such as ``64MB``)."""
    conn.execute("SET memory_limit = ?", [value])


@contextmanager
def bulk_write_settings(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Apply :data:`BULK_WRITE_SETTINGS` on ``conn`` for the duration of the block; the
    connection's ``memory_limit`` (which :class:`WriteMemory` changes) is restored too."""
    previous = {
        name: conn.execute("SELECT current_setting(?)", [name]).fetchone()[0]  # type: ignore[index]
        for name in (*BULK_WRITE_SETTINGS, "memory_limit")
    }
    for name, value in BULK_WRITE_SETTINGS.items():
        conn.execute(f"SET {name} = ?", [value])
    try:
        yield
    finally:
        for name, value in previous.items():
            # A lower cap that cannot be met yet (deletes not yet checkpointed) stays raised
            # until the connection closes: the write itself is done.
            with contextlib.suppress(duckdb.OutOfMemoryException):
                conn.execute(f"SET {name} = ?", [str(value)])


def insert_staged(
    conn: duckdb.DuckDBPyConnection,
    target: str,
    table: Table,
    files: Sequence[Path],
    scope: Scope | None = None,
) -> int:
    """Append the rows staged for ``table`` in ``files`` to ``target``; return the count.

    With ``scope``, only the staged rows of the items in it. DuckDB reads the staged Parquet
    files itself, row group by row group, so memory stays flat whatever the size.
    """
    if not files:
        return 0
    cols = ", ".join(f'"{c}"' for c in table.column_names)
    # closed files, all of one table: their Parquet types are that table's Arrow schema
    params: list[object] = [[str(f) for f in files]]
    where = ""
    if scope is not None:
        where = f" WHERE {_in(scope.column)}"
        params.append([str(v) for v in scope.values])
    insert = f"INSERT INTO {target} ({cols}) SELECT {cols} FROM read_parquet(?){where}"
    row = conn.execute(insert, params).fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class Scope:
    """The items a run actually fetched: only stored rows whose ``column`` is one of
    ``values`` are replaced; rows of every other item in the window are kept as they are.

    This is how "nothing Spotler forgets is deleted" holds: a mailing, campaign step, form or
    contact that Spotler no longer lists (or that answered 404 mid-run) is not in the scope,
    so its stored rows survive the refresh. Staged rows outside the scope (the part of an
    item's pages fetched before it went missing) are not inserted either.
    """

    column: str
    values: Sequence[str]


@dataclass(frozen=True)
class Replacement:
    """New content for ``table``: the staged ``files`` replace its rows in the window (only
    those of the items in ``scope``, when given)."""

    table: Table
    files: Sequence[Path] = field(default_factory=tuple)
    scope: Scope | None = None


@dataclass(frozen=True)
class Absent:
    """Items of catalogue ``table`` that Spotler answered 404 for during the run: their rows
    are kept but flagged ``present = false`` (in the same transaction as the write)."""

    table: Table
    key_column: str
    ids: Sequence[str]


@dataclass(frozen=True)
class WriteResult:
    """What a write did to one table.

    ``rows_kept`` counts rows inside the window that were left alone because their item was
    not fetched this time (no longer listed, or gone mid-run); ``rows_flagged`` the rows
    newly marked ``present = false``; ``table_rows`` the rows of the whole table after the
    write (:func:`with_table_rows`), None where not counted.
    """

    table: str
    rows_deleted: int
    rows_inserted: int
    rows_kept: int = 0
    rows_flagged: int = 0
    table_rows: int | None = None


def with_table_rows(
    conn: duckdb.DuckDBPyConnection, results: Sequence[WriteResult]
) -> list[WriteResult]:
    """``results`` with the row count of each whole table, as ``conn`` sees it now."""
    return [
        dataclasses.replace(
            r, table_rows=_count(conn, f'SELECT count(*) FROM {SCHEMA}."{r.table}"', [])
        )
        for r in results
    ]


def _in(column: str) -> str:
    return f'"{column}" IN (SELECT unnest(?::VARCHAR[]))'


def replace_window(
    conn: duckdb.DuckDBPyConnection,
    replacements: Sequence[Replacement],
    start: date | None,
    end: date | None,
    *,
    absent: Sequence[Absent] = (),
    account: str | None = None,
    memory: WriteMemory | None = None,
) -> list[WriteResult]:
    """Replace rows with ``start <= partition_column < end`` of each table, atomically.

    With ``start``/``end`` both ``None`` the tables are replaced as a whole. A replacement
    with a :class:`Scope` replaces only the rows of the items in it; in a table with a
    ``present`` column the window's rows of other items are marked ``present = false``.
    ``absent`` items are flagged too. All of it happens in one transaction: either every
    table has its new rows, or none changed. ``account`` is checked against the warehouse's
    account first (see :mod:`~spotler_pipeline.warehouse.account`). ``memory`` says how
    much memory DuckDB may use meanwhile (default: :class:`WriteMemory`'s).
    """
    if (start is None) != (end is None):
        raise ValueError("give both start and end of the window, or neither")
    memory = memory or WriteMemory()
    ensure_schema(conn)
    with bulk_write_settings(conn), transaction(conn, account):
        results = [_replace_one(conn, rep, start, end, memory) for rep in replacements]
        memory.for_delete(conn)
        flagged = {a.table.name: _flag_absent(conn, a) for a in absent}
    return [
        WriteResult(
            r.table,
            r.rows_deleted,
            r.rows_inserted,
            r.rows_kept,
            r.rows_flagged + flagged.pop(r.table, 0),
        )
        for r in results
    ] + [WriteResult(name, 0, 0, 0, n) for name, n in flagged.items()]


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection, account: str | None) -> Iterator[None]:
    """One transaction around a write, after checking it writes the warehouse's own account."""
    conn.execute("BEGIN TRANSACTION")
    try:
        if account is not None:
            claim_account(conn, account)
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    # Outside the try: a COMMIT that fails (a DuckLake conflict) has already ended the
    # transaction, and a ROLLBACK would hide the real error behind "no transaction".
    conn.execute("COMMIT")


def _replace_one(
    conn: duckdb.DuckDBPyConnection,
    rep: Replacement,
    start: date | None,
    end: date | None,
    memory: WriteMemory,
) -> WriteResult:
    table = rep.table
    memory.for_delete(conn)
    where, params = "true", []
    if start is not None:
        if table.partition_column is None:
            raise ValueError(f"{table.qualified_name} is not partitioned")
        where = f'"{table.partition_column}" >= ? AND "{table.partition_column}" < ?'
        params = [start, end]
    kept = flagged = 0
    if rep.scope is not None:
        table.column(rep.scope.column)  # raises KeyError naming the table
        values = [str(v) for v in rep.scope.values]
        outside = f"{where} AND NOT {_in(rep.scope.column)}"
        kept = _count(
            conn, f"SELECT count(*) FROM {table.qualified_name} WHERE {outside}", [*params, values]
        )
        if "present" in table.column_names:
            flagged = _count(
                conn,
                f"UPDATE {table.qualified_name} SET present = false "
                f"WHERE {outside} AND present IS DISTINCT FROM false",
                [*params, values],
            )
        where, params = f"{where} AND {_in(rep.scope.column)}", [*params, values]
    deleted = _count(conn, f"DELETE FROM {table.qualified_name} WHERE {where}", params)
    memory.for_insert(conn)
    inserted = insert_staged(conn, table.qualified_name, table, rep.files, rep.scope)
    return WriteResult(table.name, deleted, inserted, kept, flagged)


def _flag_absent(conn: duckdb.DuckDBPyConnection, absent: Absent) -> int:
    if not absent.ids:
        return 0
    absent.table.column("present")
    return _count(
        conn,
        f"UPDATE {absent.table.qualified_name} SET present = false "
        f"WHERE {_in(absent.key_column)} AND present IS DISTINCT FROM false",
        [[str(i) for i in absent.ids]],
    )


def _count(conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object]) -> int:
    row = conn.execute(sql, list(params)).fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class PresenceResult(WriteResult):
    """Outcome of :func:`merge_presence` for one table.

    ``rows_inserted`` counts the rows Spotler listed now (new or seen again), ``rows_new``
    those never seen before, ``rows_gone`` those newly marked ``present = false``.
    """

    rows_new: int = 0
    rows_gone: int = 0


def merge_presence(
    conn: duckdb.DuckDBPyConnection,
    replacements: Sequence[Replacement],
    *,
    account: str | None = None,
) -> list[PresenceResult]:
    """Merge a complete listing into tables that remember what disappeared, atomically.

    For each table (keyed by its ``primary_key``, with columns ``present``,
    ``first_seen_at`` and ``last_seen_at``) the staged rows are the whole current listing:
    they replace the stored rows with the same key, keeping the stored ``first_seen_at``;
    stored rows whose key is not in the listing are kept as they were but marked
    ``present = false``. Every table is written in one transaction.
    """
    ensure_schema(conn)
    with transaction(conn, account):
        return [_merge_one(conn, rep) for rep in replacements]


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
