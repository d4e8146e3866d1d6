"""Fetching from the API for the assets: concurrently, reporting progress, 404s as data.

Each :class:`FetchTask` streams one report (say the opens of one mailing) page by page into
the :class:`~spotler_pipeline.warehouse.StagingArea` (:func:`fetch_into`). Tasks run on a
thread pool sized to the client's request cap, so several mailings are fetched at once while
pages are parsed and spilled as they arrive. The first failure stops the remaining tasks and
is re-raised: the caller then writes nothing, and the warehouse stays as it was. The one
exception is an item (a mailing, campaign step, form or contact) that answers 404 mid-run:
Spotler deleted it between the listing and the fetch, so its task stops, the item is
reported as missing, and the write keeps what is stored for it (see
:class:`~spotler_pipeline.defs.writing.ItemScope`). :func:`fetch_and_write` is the two
steps together; :func:`each_or_none` is the same for one small request per item (details,
statistics).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pyarrow as pa

from spotler_pipeline.client import SpotlerNotFoundError
from spotler_pipeline.defs.resources import WarehouseResource
from spotler_pipeline.defs.writing import ItemScope, write_staged
from spotler_pipeline.warehouse import (
    StagingArea,
    Table,
    WriteResult,
    drop_repeated,
    lookups,
)
from spotler_pipeline.warehouse.quality import Window

_Item = TypeVar("_Item")
_Answer = TypeVar("_Answer")


@dataclass(frozen=True)
class FetchTask:
    """One paged report to stage into ``table``, with ``constants`` added to every row."""

    table: Table
    pages: Callable[[], Iterator[pa.RecordBatch]]
    constants: Mapping[str, Any] = field(default_factory=dict)
    #: rows we expect (e.g. the mailing's sentCount for recipients): progress messages, and
    #: a warning when the listing falls short of it
    expected_rows: int | None = None
    #: the item (mailing, step, form, contact id) the report belongs to; a 404 for it marks
    #: the item missing instead of failing the run
    item: str | None = None
    #: how the log names the report; by default the table and the item (which must then
    #: not be a contact id)
    listing: str | None = None

    def describe(self) -> str:
        if self.listing is not None:
            return self.listing
        return self.table.name + (f" of {self.item}" if self.item is not None else "")


class _Cancelled(Exception):
    pass


class _Progress:
    def __init__(self, tasks: list[FetchTask]) -> None:
        self._lock = threading.Lock()
        self.rows: dict[str, int] = {}
        self.expected: dict[str, int | None] = {}
        self.done = 0
        self.total = len(tasks)
        self.by_item: dict[tuple[str, str], int] = {}
        self.missing: set[str] = set()
        self.repeated: dict[str, int] = {}
        for t in tasks:
            name = t.table.name
            self.rows.setdefault(name, 0)
            prev = self.expected.get(name, 0)
            self.expected[name] = (
                None if t.expected_rows is None or prev is None else prev + t.expected_rows
            )

    def add(self, table: str, n: int, item: str | None = None) -> None:
        with self._lock:
            self.rows[table] += n
            if item is not None:
                key = (table, item)
                self.by_item[key] = self.by_item.get(key, 0) + n

    def drop(self, table: str, n: int) -> None:
        with self._lock:
            self.repeated[table] = self.repeated.get(table, 0) + n

    def lost(self, item: str) -> None:
        with self._lock:
            self.missing.add(item)

    def finish(self) -> None:
        with self._lock:
            self.done += 1

    def describe(self) -> str:
        with self._lock:
            parts = []
            for name, n in self.rows.items():
                expected = self.expected.get(name)
                if expected:
                    parts.append(f"{name}: {n:,} of {expected:,} ({100 * n / expected:.0f}%)")
                else:
                    parts.append(f"{name}: {n:,} rows")
            return f"{self.done} of {self.total} reports fetched; " + ", ".join(parts)


def _longest_first(tasks: list[FetchTask]) -> list[FetchTask]:
    """The tasks grouped by table in order of first appearance (callers list the biggest
    report, recipients, first), keeping their order within a table.

    Given mailing by mailing, a pool of eight would fetch two mailings' four reports at once
    and start the last mailing's recipients, the longest stream, only at the end; grouped,
    every mailing's recipients start at once and the short reports fill in behind them.
    """
    order = {name: i for i, name in enumerate(dict.fromkeys(t.table.name for t in tasks))}
    return sorted(tasks, key=lambda t: order[t.table.name])


@dataclass(frozen=True)
class Fetched:
    """What :func:`fetch_into` staged: rows per table, the items that answered 404, and the
    rows per table dropped as repeated across pages."""

    rows: dict[str, int]
    missing: frozenset[str] = frozenset()
    repeated: Mapping[str, int] = field(default_factory=dict)


def fetch_into(
    stage: StagingArea,
    tasks: Iterable[FetchTask],
    *,
    max_workers: int,
    log: logging.Logger | Any,
    progress_interval: float = 5.0,
) -> Fetched:
    """Run ``tasks`` concurrently into ``stage``; return rows staged per table name.

    A task whose ``item`` answers 404 stops quietly and the item is listed in
    ``Fetched.missing``; any other failure stops every task and is raised. A task whose
    report falls short of its ``expected_rows`` is logged as a warning with both numbers.
    Rows a page repeats from the page before (on the table's key: an offset listing that
    shifted while it was read, see :func:`~spotler_pipeline.warehouse.drop_repeated`) are
    dropped, with a warning naming the listing and how many.
    """
    task_list = _longest_first(list(tasks))
    progress = _Progress(task_list)
    if not task_list:
        return Fetched({})
    cancel = threading.Event()

    def run(task: FetchTask) -> None:
        previous: pa.RecordBatch | None = None
        repeated = 0
        try:
            for batch in task.pages():
                if cancel.is_set():
                    raise _Cancelled()
                fresh = drop_repeated(task.table, previous, batch)
                repeated += batch.num_rows - fresh.num_rows
                previous = batch
                staged = stage.append(task.table, fresh, task.constants)
                progress.add(task.table.name, staged, task.item)
        except SpotlerNotFoundError:
            if task.item is None:
                raise
            progress.lost(task.item)
        if repeated:
            progress.drop(task.table.name, repeated)
            log.warning(
                f"{task.describe()}: {repeated:,} of its rows repeated across pages, dropped "
                "(Spotler recorded new rows while the listing was read, which shifted its "
                "pages; those new rows arrive with the next refresh)"
            )
        progress.finish()

    started = time.monotonic()
    with ThreadPoolExecutor(
        max_workers=max(1, max_workers), thread_name_prefix="spotler-fetch"
    ) as pool:
        pending: set[Future[None]] = {pool.submit(run, t) for t in task_list}
        while pending:
            done, pending = wait(pending, timeout=progress_interval, return_when=FIRST_EXCEPTION)
            failed = [f for f in done if f.exception() is not None]
            if failed:
                cancel.set()
                for f in pending:
                    f.cancel()
                wait(pending)
                errors = [f.exception() for f in failed]
                real = [e for e in errors if not isinstance(e, _Cancelled)]
                raise (real or errors)[0]  # type: ignore[misc]
            if pending:
                log.info(f"Fetching: {progress.describe()}")
    log.info(f"Fetched in {time.monotonic() - started:.1f}s: {progress.describe()}")
    for task in task_list:
        if task.expected_rows is None or task.item is None or task.item in progress.missing:
            continue
        got = progress.by_item.get((task.table.name, task.item), 0)
        if got < task.expected_rows:
            log.warning(
                f"{task.table.name} of {task.item}: Spotler listed {got:,} rows where it "
                f"states {task.expected_rows:,}; stored as listed (a check flags it)"
            )
    return Fetched(dict(progress.rows), frozenset(progress.missing), dict(progress.repeated))


def each_or_none(
    fetch: Callable[[_Item], _Answer],
    items: Sequence[_Item],
    *,
    workers: int,
    log: logging.Logger | Any,
    what: str,
    noun: str,
    progress_interval: float = 10.0,
) -> list[_Answer | None]:
    """``fetch(item)`` for each of ``items`` (one request each, ``workers`` at once), in
    their order; ``None`` for an item that answers 404 (deleted in Spotler since it was
    listed). Any other failure is raised. Says every ``progress_interval`` seconds how far
    it got, and at the end how long it took: "Statistics of 5,000 mailings in 1.3s" for
    ``what`` "Statistics" and ``noun`` "mailings".

    Time is bounded by the client's request cap: ``len(items) / workers`` round trips (or
    the optional requests-per-second cap), each bounded by its timeout and retries.
    """

    def one(item: _Item) -> _Answer | None:
        try:
            return fetch(item)
        except SpotlerNotFoundError:
            return None

    started = time.monotonic()
    results: list[_Answer | None] = [None] * len(items)
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="spotler-each") as pool:
        futures = {pool.submit(one, item): i for i, item in enumerate(items)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=progress_interval, return_when=FIRST_EXCEPTION)
            for future in done:
                results[futures[future]] = future.result()  # re-raises the first failure
            if pending:
                log.info(f"{what} of {len(futures) - len(pending):,} of {len(futures):,}")
    if items:
        log.info(f"{what} of {len(items):,} {noun} in {time.monotonic() - started:.1f}s")
    return results


def complete_items(
    warehouse: WarehouseResource,
    table: Table,
    column: str,
    expected: Mapping[str, int],
    window: Window,
) -> dict[str, int]:
    """The items of ``expected`` (item id -> rows Spotler states it has) whose rows of
    ``table`` (item in ``column``) stored in ``window`` already number exactly that:
    ``{item: rows}``. Read from the published copy, like the checks.
    """
    with warehouse.read() as conn:
        return lookups.complete_items(conn, table, column, expected, window.start, window.end)


@dataclass(frozen=True)
class Written:
    """What :func:`fetch_and_write` did: the writes, the items that answered 404, and how
    long fetching and writing took."""

    results: list[WriteResult]
    missing: frozenset[str]
    fetch_seconds: float = 0.0
    write_seconds: float = 0.0
    #: rows per table dropped as repeated across pages
    repeated: Mapping[str, int] = field(default_factory=dict)


def fetch_and_write(
    warehouse: WarehouseResource,
    tasks: Iterable[FetchTask],
    tables: Sequence[Table],
    days: Window,
    *,
    scope: ItemScope,
    account: str | None,
    max_workers: int,
    log: logging.Logger | Any,
    requests: Callable[[], int] | None = None,
) -> Written:
    """Stage every task's pages, then replace ``days`` of ``tables`` in one write
    (:func:`~spotler_pipeline.defs.writing.write_staged`), for the items in ``scope`` that
    were fetched; rows of the others stay.

    Nothing is written unless every page arrived; the warehouse is held only for the write.
    ``requests`` (the client's request count) is logged before the write.
    """
    started = time.monotonic()
    with warehouse.staging() as stage:
        fetched = fetch_into(stage, tasks, max_workers=max_workers, log=log)
        writing = time.monotonic()
        results = write_staged(
            warehouse,
            stage,
            tables,
            days,
            scope=scope,
            missing=fetched.missing,
            account=account,
            log=log,
            requests=None if requests is None else requests(),
        )
    done = time.monotonic()
    return Written(results, fetched.missing, writing - started, done - writing, fetched.repeated)
