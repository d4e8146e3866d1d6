"""Open the warehouse file, always under the catalog alias :data:`CATALOG`.

DuckDB names a database after its file, so ``spotler.duckdb`` opened directly becomes
catalog ``spotler``, and ``spotler.mailings`` is then ambiguous between catalog ``spotler``
and schema ``spotler`` (a Binder error). Attaching the file under another alias keeps the
documented ``spotler.<table>`` names working. Views are written with unqualified table names
so they bind inside their own schema, whichever way the file was opened.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from spotler_pipeline.warehouse.legacy import refuse_legacy
from spotler_pipeline.warehouse.spill import SpillFolder
from spotler_pipeline.warehouse.sql import sql_string

CATALOG = "warehouse"

#: DuckDB's own default is 80% of the machine's memory. The pipeline shares its machine with
#: Dagster and notebooks, and its biggest statements (bulk inserts, key checks over a whole
#: table) do fine spilling to ``temp_directory`` instead, so memory stays flat as data grows.
DEFAULT_MEMORY_LIMIT = "96MB"

#: The folder beside the warehouse file that connections spill into (each in a folder of its
#: own inside it, see :mod:`~spotler_pipeline.warehouse.spill`).
SPILL_FOLDER = ".duckdb-spill"

#: Substrings of DuckDB's error when another process holds the file.
_LOCK_ERRORS = ("lock", "Conflicting lock")


class WarehouseLockedError(RuntimeError):
    """Another process kept the DuckDB file for longer than the lock timeout; ``holder``
    names it (program and PID, as DuckDB reports them)."""

    def __init__(self, message: str, holder: str = "another process") -> None:
        super().__init__(message)
        self.holder = holder


#: How often a run waiting for the file says so (seconds).
WAIT_REPORT_INTERVAL = 15.0


def lock_holder(error: str) -> str:
    """Who holds the file, from DuckDB's lock error (it names the program and its PID)."""
    match = re.search(r"Conflicting lock is held in (.+?) \(PID (\d+)\)", error)
    if match:
        return f"{match.group(1)} (PID {match.group(2)})"
    return "another process"


def open_warehouse(
    database: str | os.PathLike[str],
    *,
    read_only: bool = False,
    lock_timeout: float = 120.0,
    config: dict[str, str | int | bool] | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> duckdb.DuckDBPyConnection:
    """Connect to ``database`` (created if missing unless ``read_only``).

    While another process holds the file, retries with back-off; every
    :data:`WAIT_REPORT_INTERVAL` seconds ``on_wait`` is told who holds it, and after
    ``lock_timeout`` seconds :class:`WarehouseLockedError` says which process to close.
    ``config`` overrides DuckDB settings (by default a memory limit of
    :data:`DEFAULT_MEMORY_LIMIT`, spilling next to the file). Its ``temp_directory`` is
    where to spill: the connection spills into a folder of its own inside it (removed on
    close), so processes spilling at once never touch each other's files.
    """
    path = Path(database)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    mode = " (READ_ONLY)" if read_only else ""
    settings: dict[str, str | int | bool] = {"memory_limit": DEFAULT_MEMORY_LIMIT, **(config or {})}
    spill_base = settings.pop("temp_directory", None) or path.parent / SPILL_FOLDER
    # A file written by the first release's DuckDB 2.x is converted by an explicit command.
    refuse_legacy(path)
    started = time.monotonic()
    next_report = started + WAIT_REPORT_INTERVAL
    delay = 0.05
    while True:
        spill = SpillFolder(str(spill_base))
        try:
            conn = duckdb.connect(config={**settings, "temp_directory": spill.path})
        except BaseException:
            spill.release()
            raise
        try:
            conn.execute(f"ATTACH {sql_string(str(path))} AS {CATALOG}{mode}")
            conn.execute(f"USE {CATALOG}")
            spill.keep_while(conn)
            return conn
        except duckdb.Error as exc:
            conn.close()
            spill.release()
            if not any(s in str(exc) for s in _LOCK_ERRORS):
                raise
            now = time.monotonic()
            holder = lock_holder(str(exc))
            if now - started >= lock_timeout:
                raise WarehouseLockedError(
                    f"The warehouse file {path} is held by {holder} and was not released "
                    f"within {lock_timeout:.0f} s. Close that process (a notebook or DuckDB "
                    "shell that opened the file directly; notebooks should use "
                    "spotler_pipeline.notebook.connect(), which reads the published copy), "
                    "then re-run. Nothing was written.",
                    holder,
                ) from None
            if on_wait is not None and now >= next_report:
                on_wait(
                    f"Waiting {now - started:.0f} s for the warehouse file {path}: it is held "
                    f"by {holder}; giving up after {lock_timeout:.0f} s"
                )
                next_report = now + WAIT_REPORT_INTERVAL
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def is_usable(conn: duckdb.DuckDBPyConnection) -> bool:
    """Whether ``conn`` still answers a query: an internal error in DuckDB invalidates the
    database it was opened on, and every later query on it fails the same way."""
    try:
        conn.execute("SELECT 1").fetchall()
    except duckdb.Error:
        return False
    return True
