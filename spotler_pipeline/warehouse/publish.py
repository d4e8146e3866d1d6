"""Publish a read-only copy of the warehouse for notebooks.

DuckDB allows one writing process or many reading ones, never both; a notebook holding a
connection for hours would make every run fail. So readers never open the pipeline's file:
after each committed write the pipeline checkpoints and copies it to ``published/`` next to
it, swapping the copy in with an atomic rename. A reader keeps the snapshot it opened (the
old file stays valid until it closes) and sees only committed, complete partitions.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb


def published_path(database: str | os.PathLike[str]) -> Path:
    """Where the read-only copy of ``database`` is published."""
    db = Path(database)
    return db.parent / "published" / db.name


def publish_snapshot(conn: duckdb.DuckDBPyConnection, database: Path) -> Path:
    """Copy the committed state of ``database`` (open for writing on ``conn``) to readers.

    Holding ``conn`` keeps other writers out while the file is copied, so the copy is
    consistent once the checkpoint has moved the write-ahead log into the file.
    """
    target = published_path(database)
    target.parent.mkdir(parents=True, exist_ok=True)
    conn.execute("CHECKPOINT")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.copyfile(database, tmp)
    os.replace(tmp, target)
    return target
