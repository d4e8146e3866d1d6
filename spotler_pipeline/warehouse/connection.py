"""Open the warehouse file, always under the catalog alias :data:`CATALOG`.

DuckDB names a database after its file, so ``spotler.duckdb`` opened directly becomes
catalog ``spotler``, and ``spotler.mailings`` is then ambiguous between catalog ``spotler``
and schema ``spotler`` (a Binder error). Attaching the file under another alias keeps the
documented ``spotler.<table>`` names working. Views are written with unqualified table names
so they bind inside their own schema, whichever way the file was opened.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import duckdb

CATALOG = "warehouse"

#: DuckDB's own default is 80% of the machine's memory. The pipeline shares its machine with
#: Dagster and notebooks, and its biggest statements (bulk inserts, key checks over a whole
#: table) do fine spilling to ``temp_directory`` instead, so memory stays flat as data grows.
DEFAULT_MEMORY_LIMIT = "96MB"

#: Substrings of DuckDB's error when another process holds the file.
_LOCK_ERRORS = ("lock", "Conflicting lock")


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def open_warehouse(
    database: str | os.PathLike[str],
    *,
    read_only: bool = False,
    lock_timeout: float = 300.0,
    config: dict[str, str | int | bool] | None = None,
) -> duckdb.DuckDBPyConnection:
    """Connect to ``database`` (created if missing unless ``read_only``).

    While another process holds the file, retries with back-off for up to ``lock_timeout``
    seconds, then raises DuckDB's error. ``config`` overrides DuckDB settings (by default a
    memory limit of :data:`DEFAULT_MEMORY_LIMIT`, spilling next to the file).
    """
    path = Path(database)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    mode = " (READ_ONLY)" if read_only else ""
    settings: dict[str, str | int | bool] = {
        "memory_limit": DEFAULT_MEMORY_LIMIT,
        "temp_directory": str(path.parent / ".duckdb-spill"),
        **(config or {}),
    }
    deadline = time.monotonic() + lock_timeout
    delay = 0.05
    while True:
        conn = duckdb.connect(config=settings)
        try:
            conn.execute(f"ATTACH {_sql_string(str(path))} AS {CATALOG}{mode}")
            conn.execute(f"USE {CATALOG}")
            return conn
        except duckdb.Error as exc:
            conn.close()
            if not any(s in str(exc) for s in _LOCK_ERRORS) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
