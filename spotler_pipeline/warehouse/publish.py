"""Publish a read-only copy of the warehouse for notebooks.

DuckDB allows one writing process or many reading ones, never both; a notebook holding a
connection for hours would make every run fail. So readers never open the pipeline's file:
once a run's committed writes are done, the pipeline checkpoints the file and copies it to
``published/`` next to it, swapping the copy in with an atomic rename
(``WarehouseResource``). A reader keeps the snapshot it opened (the old file stays valid
until it closes) and sees only committed, complete partitions.

Cost: one file copy per run that wrote, made while the writer holds the file (so the copy is
consistent); it grows with the file. Where the file system can clone (btrfs, XFS with
reflink), the copy is a constant-time clone.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb

from spotler_pipeline.warehouse.connection import SPILL_FOLDER, open_warehouse

try:
    import fcntl
except ImportError:  # Windows: no ioctl, always a plain copy
    fcntl = None  # type: ignore[assignment]

#: ``FICLONE`` ioctl (linux/fs.h): share the source's blocks copy-on-write.
_FICLONE = 0x40049409


def published_path(database: str | os.PathLike[str]) -> Path:
    """Where the read-only copy of ``database`` is published."""
    db = Path(database)
    return db.parent / "published" / db.name


def open_published(
    database: str | os.PathLike[str],
    *,
    lock_timeout: float = 120.0,
    config: dict[str, str | int | bool] | None = None,
) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the published copy of ``database``. It spills beside the
    warehouse (its ``.duckdb-spill``) unless ``config`` names a ``temp_directory``: the
    published folder holds the copy alone."""
    settings = {"temp_directory": str(Path(database).parent / SPILL_FOLDER), **(config or {})}
    return open_warehouse(
        published_path(database), read_only=True, lock_timeout=lock_timeout, config=settings
    )


def publish_snapshot(conn: duckdb.DuckDBPyConnection, database: Path) -> Path:
    """Copy the committed state of ``database`` (open for writing on ``conn``) to readers.

    Holding ``conn`` keeps other writers out while the file is copied, so the copy is
    consistent once the checkpoint has moved the write-ahead log into the file.
    """
    target = published_path(database)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Only the writer holding the file publishes, so any temporary copy still lying around
    # is what a killed run left behind.
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    conn.execute("CHECKPOINT")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        _copy(Path(database), tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def _copy(source: Path, destination: Path) -> None:
    """Clone ``source`` where the file system supports it, else copy its bytes."""
    if fcntl is not None:
        with source.open("rb") as src, destination.open("wb") as dst:
            try:
                fcntl.ioctl(dst.fileno(), _FICLONE, src.fileno())
                return
            except OSError:
                pass  # no reflink here (ext4, tmpfs, across devices): copy instead
    shutil.copyfile(source, destination)
