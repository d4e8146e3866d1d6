"""Read the warehouse from a notebook without ever blocking the pipeline.

>>> from spotler_pipeline.notebook import connect
>>> con = connect()
>>> con.sql("SELECT * FROM spotler.mailing_stats_latest").df()

The connection is to the *published* read-only copy that the pipeline refreshes after each
successful write (see :mod:`spotler_pipeline.warehouse.publish`), so it may be held open for
hours while runs keep writing. Reconnect to see newer data.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from spotler_pipeline.defs.config import DEFAULT_DUCKDB_PATH, DEFAULT_TIMEZONE
from spotler_pipeline.warehouse.connection import open_warehouse
from spotler_pipeline.warehouse.publish import published_path


def connect(database: str | os.PathLike[str] | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only DuckDB connection to the published data (schema ``spotler``).

    ``database`` is the pipeline's DuckDB file; by default ``SPOTLER_DUCKDB_PATH`` or
    ``data/spotler.duckdb``. A relative path is found from the working directory or one of
    its parents, so a notebook running in ``notebooks/`` finds the project's ``data/``.
    Timestamps are shown in ``SPOTLER_TIMEZONE``.
    """
    db = _locate(Path(database or os.environ.get("SPOTLER_DUCKDB_PATH") or DEFAULT_DUCKDB_PATH))
    path = published_path(db)
    if not path.exists():
        raise FileNotFoundError(
            f"No published Spotler data at {path}: it appears after the first successful "
            f"materialisation into {db} (run `make demo`, or materialise an asset in the UI)."
        )
    conn = open_warehouse(path, read_only=True)
    # The pipeline's own cap keeps runs small beside Dagster; analysis gets DuckDB's default.
    conn.execute("RESET memory_limit")
    conn.execute("SET TimeZone = ?", [os.environ.get("SPOTLER_TIMEZONE", DEFAULT_TIMEZONE)])
    return conn


def _locate(database: Path) -> Path:
    """``database`` as the pipeline sees it: a relative path is relative to the project
    folder (where ``make`` and ``dagster dev`` run), while Jupyter starts kernels in the
    notebook's folder; so the nearest working directory or parent that holds its published
    copy wins."""
    if database.is_absolute():
        return database
    here = Path.cwd()
    for base in (here, *here.parents):
        if published_path(base / database).exists():
            return base / database
    return database
