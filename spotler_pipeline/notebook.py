"""Read the warehouse from a notebook without ever blocking the pipeline.

>>> from spotler_pipeline.notebook import connect
>>> con = connect()
>>> con.sql("SELECT * FROM spotler.mailing_stats_latest").df()

With the DuckDB file as the warehouse, the connection is to the *published* read-only copy
that the pipeline refreshes after each successful write (see
:mod:`spotler_pipeline.warehouse.publish`), so it may be held open for hours while runs keep
writing. Reconnect to see newer data.

With a DuckLake (``SPOTLER_DUCKLAKE_CATALOG`` set), the lake is attached read-only: each
query sees the latest committed snapshot, nothing is copied, and ``snapshot_version`` /
``snapshot_time`` show the warehouse as it was at an earlier snapshot.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import duckdb

from spotler_pipeline.settings import account_timezone, duckdb_path
from spotler_pipeline.warehouse.lake import LakeSettings, open_lake
from spotler_pipeline.warehouse.legacy import refuse_legacy
from spotler_pipeline.warehouse.publish import open_published, published_path


def connect(
    database: str | os.PathLike[str] | None = None,
    *,
    snapshot_version: int | None = None,
    snapshot_time: datetime | str | None = None,
) -> duckdb.DuckDBPyConnection:
    """A read-only DuckDB connection to the published data (schema ``spotler``).

    On a lake: the latest committed snapshot, or the one given by ``snapshot_version`` (an id
    from ``FROM lake.snapshots()``) or ``snapshot_time`` (the warehouse as it was then).

    ``database`` is the pipeline's DuckDB file; by default ``SPOTLER_DUCKDB_PATH`` or
    ``data/spotler.duckdb``. A relative path is found from the working directory or one of
    its parents, so a notebook running in ``notebooks/`` finds the project's ``data/``.
    Timestamps are shown in ``SPOTLER_TIMEZONE``.
    """
    lake = LakeSettings.from_env()
    if lake is not None and database is None:
        conn = open_lake(
            lake,
            read_only=True,
            snapshot_version=snapshot_version,
            snapshot_time=snapshot_time,
            config=_analysis_memory(),
        )
        return _for_analysis(conn)
    if snapshot_version is not None or snapshot_time is not None:
        raise ValueError(
            "snapshot_version / snapshot_time need the DuckLake warehouse "
            "(SPOTLER_DUCKLAKE_CATALOG); the DuckDB file keeps no history"
        )
    db = _locate(Path(database) if database else duckdb_path())
    refuse_legacy(db)  # the first release's file: one line naming the command converting it
    path = published_path(db)
    if not path.exists():
        raise FileNotFoundError(
            f"No published Spotler data at {path}: it appears after the first successful "
            f"materialisation into {db} (run `make demo`, or materialise an asset in the UI)."
        )
    return _for_analysis(open_published(db, config=_analysis_memory()))


def _analysis_memory() -> dict[str, str | int | bool]:
    """DuckDB's own default memory limit (80% of this machine's memory), given explicitly:
    the pipeline caps its connections to stay small beside Dagster, and an analyst's query
    should not be. (``RESET memory_limit`` after connecting is not enough in DuckDB 1.5.5:
    ``current_setting`` then reports the default, but the cap stays in force.)"""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"memory_limit": f"{int(total * 0.8) // 2**20}MiB"}


def _for_analysis(conn: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    conn.execute("SET TimeZone = ?", [account_timezone()])
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
