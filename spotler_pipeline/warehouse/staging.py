"""Spill fetched pages to local Parquet files until the final write.

A run fetches for minutes; the DuckDB file must not be locked all that time, and a whole
partition of rows must not sit in memory. So each page, as it arrives, is conformed to its
table's Arrow schema and appended to a Parquet file in a private folder of the staging
directory (one file per table, a row group per page, written as it comes: concurrent fetches
barely wait for each other). The final write reads those files with DuckDB's own
``read_parquet`` in one transaction (:mod:`spotler_pipeline.warehouse.writes`).

The staging directory is ``SPOTLER_STAGING_DIR``, by default ``.staging/`` beside the
warehouse file: on real disk, not the system temp folder (often RAM). Each run's folder holds
an exclusive ``flock`` on its ``.lock`` file while the run lives; a run killed with
``kill -9`` cannot remove its folder, so every new staging area first removes the folders
whose lock nobody holds any more (the kernel drops a dead process's locks).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from spotler_pipeline.warehouse.abandoned import remove_if_abandoned
from spotler_pipeline.warehouse.model import Table

PREFIX = "spotler-stage-"


def remove_abandoned(directory: Path) -> list[Path]:
    """Remove the run folders in ``directory`` that no living process holds; return them."""
    return [
        folder
        for folder in directory.glob(f"{PREFIX}*")
        if remove_if_abandoned(folder, folder / ".lock")
    ]


#: Pages waiting for the writer thread at most: fetch threads wait rather than
#: pile pages up in memory when the disk is slower than the API.
MAX_PENDING_PAGES = 16


class StagingArea:
    """Parquet files for the rows of one run, per table. Use as a context manager.

    ``directory`` is the staging directory (created if missing; the system temp folder when
    ``None``); :attr:`abandoned` lists the folders of killed runs removed on the way in.

    Pages are conformed and written by one thread of the area's own, not by the fetch
    threads that hand them in: Arrow's default allocator (mimalloc) keeps a heap per thread
    and holds on to what a page freed, so the same work spread over every fetch thread held
    several times the memory of one thread.
    """

    def __init__(self, directory: str | Path | None = None) -> None:
        if directory is not None:
            Path(directory).mkdir(parents=True, exist_ok=True)
        base = Path(directory) if directory is not None else Path(tempfile.gettempdir())
        self.abandoned = remove_abandoned(base)
        self._dir = Path(tempfile.mkdtemp(prefix=PREFIX, dir=base))
        self._lock_fd = os.open(self._dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self._lock = threading.Lock()
        self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="spotler-stage")
        self._pending = threading.BoundedSemaphore(MAX_PENDING_PAGES)
        self._error: BaseException | None = None
        # only the writer thread touches these
        self._writers: dict[str, _PageWriter] = {}
        self._files: dict[str, list[Path]] = {}
        self._rows: dict[str, int] = {}

    def __enter__(self) -> StagingArea:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def append(
        self,
        table: Table,
        batch: pa.RecordBatch | pa.Table,
        constants: Mapping[str, Any] | None = None,
    ) -> int:
        """Stage ``batch`` for ``table``; columns missing from it are filled from ``constants``.

        Returns the number of rows staged. Thread-safe. A failure to conform or write an
        earlier page is raised here (or by :meth:`files`).
        """
        self._raise_failure()
        n = batch.num_rows
        self._count(table, n)
        if n == 0:
            return 0
        self._pending.acquire()
        try:
            future = self._writer_thread.submit(self._write, table, batch, constants or {})
        except BaseException:
            self._pending.release()
            raise
        future.add_done_callback(self._written)
        return n

    def rows(self, table: Table) -> int:
        with self._lock:
            return self._rows.get(table.name, 0)

    def files(self, table: Table) -> list[Path]:
        """Closed, readable staged files for ``table`` (closes its writer once every page
        staged before is written)."""
        files = self._writer_thread.submit(self._close, table).result()
        self._raise_failure()
        return files

    def cleanup(self) -> None:
        self._writer_thread.shutdown(wait=True, cancel_futures=True)
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
        shutil.rmtree(self._dir, ignore_errors=True)
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = -1

    @property
    def directory(self) -> Path:
        return self._dir

    def _count(self, table: Table, n: int) -> None:
        with self._lock:
            self._rows[table.name] = self._rows.get(table.name, 0) + n

    def _write(
        self, table: Table, batch: pa.RecordBatch | pa.Table, constants: Mapping[str, Any]
    ) -> None:
        if self._error is not None:
            return  # the run fails anyway; its files are incomplete
        batch = conform(table, batch, constants)
        writer = self._writers.get(table.name)
        if writer is None:
            files = self._files.setdefault(table.name, [])
            path = self._dir / f"{table.name}-{len(files):04d}.parquet"
            writer = self._writers[table.name] = _PageWriter(path, table.arrow_schema)
            files.append(path)
        writer.write_batch(batch)

    def _written(self, future: Future[None]) -> None:
        self._pending.release()
        error = None if future.cancelled() else future.exception()
        if error is not None and self._error is None:
            self._error = error

    def _close(self, table: Table) -> list[Path]:
        writer = self._writers.pop(table.name, None)
        if writer is not None:
            writer.close()
        return list(self._files.get(table.name, []))

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"staging a page failed: {self._error}") from self._error


class _PageWriter:
    """A Parquet file written a row group per page, as the pages come, unencoded.

    The file lives only until the final write, so it is written for DuckDB to read back
    cheaply rather than to keep: no compression, dictionary or statistics (with them, the
    writer keeps its buffers until closed). Parquet rather than an Arrow IPC stream because
    DuckDB reads Parquet itself: ``read_parquet`` inserts the staged rows within the
    connection's ``memory_limit``, where an Arrow stream took several times the memory
    (whatever the limit) and twice the time.
    """

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self._writer = pq.ParquetWriter(
            str(path),
            schema,
            compression="none",
            use_dictionary=False,
            write_statistics=False,
        )

    def write_batch(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)

    def close(self) -> None:
        self._writer.close()


def conform(
    table: Table, batch: pa.RecordBatch | pa.Table, constants: Mapping[str, Any]
) -> pa.RecordBatch:
    """Arrange ``batch`` as ``table``'s columns, in order and type, adding constant columns."""
    if isinstance(batch, pa.Table):
        combined = batch.combine_chunks().to_batches()
        batch = combined[0] if combined else pa.RecordBatch.from_pylist([], schema=batch.schema)
    n = batch.num_rows
    arrays = []
    for col in table.columns:
        if col.name in constants:
            arrays.append(pa.repeat(pa.scalar(constants[col.name], col.arrow_type), n))
            continue
        idx = batch.schema.get_field_index(col.name)
        if idx < 0:
            arrays.append(pa.nulls(n, col.arrow_type))
            continue
        arr = batch.column(idx)
        if not arr.type.equals(col.arrow_type):
            arr = arr.cast(col.arrow_type)
        arrays.append(arr)
    return pa.RecordBatch.from_arrays(arrays, schema=table.arrow_schema)


def drop_repeated(
    table: Table, previous: pa.RecordBatch | None, page: pa.RecordBatch
) -> pa.RecordBatch:
    """``page`` without the rows whose key in ``table`` is that of a row of ``previous``, the
    page of the same listing before it.

    Spotler's paging is by offset, and an account keeps recording opens and clicks while a
    listing is read: a record inserted ahead of the reader moves every later record one place
    on, so the next page starts with the previous page's last row again. Compared on the key
    columns the page has (the columns the whole listing shares, such as the mailing id, are
    added later and the same for every row). The common case, no repeat, costs one comparison
    of the page's first key against the previous page.
    """
    keys = [k for k in table.primary_key if k in page.schema.names]
    if previous is None or page.num_rows == 0 or previous.num_rows == 0 or not keys:
        return page
    first = None
    for key in keys:
        same = pc.equal(previous.column(key), page.column(key)[0])
        first = same if first is None else pc.and_(first, same)
    if not pc.any(first).as_py():
        return page
    rows = pa.Table.from_batches([page]).append_column(
        "__row", pa.array(range(page.num_rows), pa.int64())
    )
    fresh = rows.join(
        pa.Table.from_batches([previous]).select(keys),
        keys=keys,
        join_type="left anti",
        use_threads=False,
    )["__row"]
    return page.take(pc.take(fresh, pc.sort_indices(fresh)).combine_chunks())
