"""From what a run staged to the warehouse, in one call.

Every asset writes through :func:`write_staged`: the staged rows of each table replace the
run's days for the items it fetched, or, for an unpartitioned catalogue, are merged as its
complete listing (:func:`merge_listing`); all in one transaction. The copy for readers is
published when the run ends (``WarehouseResource``). Rows built in memory are staged first by
:func:`write_rows`. :class:`ItemScope` says which items a write replaces, and which
catalogue flags the items that answered 404 (nothing Spotler forgets is deleted).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import dagster as dg
import pyarrow as pa

from spotler_pipeline.defs.checks import WarehouseCheck, inline_results
from spotler_pipeline.defs.metadata import presence_results
from spotler_pipeline.defs.resources import WarehouseResource
from spotler_pipeline.warehouse import Absent, Replacement, Scope, StagingArea, Table, WriteResult
from spotler_pipeline.warehouse.quality import Window


def rows_table(table: Table, rows: list[dict[str, Any]]) -> pa.Table:
    """Rows built in memory (dicts by column name) as an Arrow table of ``table``'s schema."""
    return pa.Table.from_pylist(rows, schema=table.arrow_schema)


@dataclass(frozen=True)
class Unchanged:
    """Items whose stored rows of ``table`` are already complete (say a sent mailing's
    recipients, once they number its ``sentCount``), so the run did not fetch them again;
    ``rows`` maps each item to its stored rows, which stay as they are."""

    table: Table
    rows: Mapping[str, int]


@dataclass(frozen=True)
class ItemScope:
    """The items a run listed, and how their rows and catalogue are found.

    Rows of ``column`` in ``items`` are replaced; the others in the window are kept. Items
    that answer 404 while fetched are kept too and flagged ``present = false`` in
    ``catalogue`` (by ``catalogue_key``), when given; the catalogue's own rows, when the run
    writes it, are found by ``catalogue_key`` as well. Items ``unchanged`` for a table were
    not fetched for it, so that table's stored rows of them are kept as well.
    """

    column: str
    items: Sequence[str]
    catalogue: Table | None = None
    catalogue_key: str = "encrypted_id"
    unchanged: Sequence[Unchanged] = ()

    def column_of(self, table: Table) -> str:
        """The column naming the item in ``table``'s rows."""
        if self.catalogue is not None and table.name == self.catalogue.name:
            return self.catalogue_key
        return self.column

    def replacements(
        self, tables: Sequence[Table], stage: StagingArea, missing: Collection[str]
    ) -> tuple[list[Replacement], list[Absent]]:
        """What ``stage`` holds for ``tables``, scoped to the items fetched (not ``missing``,
        nor unchanged for the table), and the catalogue rows of the ``missing`` to flag."""
        fetched = [i for i in self.items if i not in missing]
        skip = {u.table.name: set(u.rows) for u in self.unchanged}
        replacements = [
            Replacement(
                t,
                stage.files(t),
                Scope(self.column_of(t), [i for i in fetched if i not in skip.get(t.name, ())]),
            )
            for t in tables
        ]
        absent = (
            [Absent(self.catalogue, self.catalogue_key, sorted(missing))]
            if self.catalogue is not None and missing
            else []
        )
        return replacements, absent

    def unchanged_rows(self, tables: Sequence[Table], missing: Collection[str]) -> dict[str, int]:
        """Stored rows kept per table because they were complete (not because Spotler no
        longer lists them)."""
        names = {t.name for t in tables}
        return {
            u.table.name: sum(n for item, n in u.rows.items() if item not in missing)
            for u in self.unchanged
            if u.table.name in names
        }


def write_staged(
    warehouse: WarehouseResource,
    stage: StagingArea,
    tables: Sequence[Table],
    days: Window | None,
    *,
    scope: ItemScope | None = None,
    missing: Collection[str] = frozenset(),
    account: str | None,
    log: logging.Logger | Any,
    requests: int | None = None,
) -> list[WriteResult]:
    """Write what ``stage`` holds for ``tables`` and publish, in one transaction.

    Partitioned tables replace ``days``, for the items of ``scope`` fetched (not in
    ``missing``, which its catalogue flags); rows of the others stay (without a scope, the
    whole of ``days`` is replaced). Unpartitioned catalogues (``days`` ``None``, no scope)
    are merged as the complete listing they are.
    ``requests`` (the API requests the run made) is logged before the write, so the log says
    what a run asked of the API even when its write fails. In the results, ``rows_kept``
    counts only what Spotler no longer lists, not the rows kept as complete.
    """
    if scope is None:
        replacements, absent = [Replacement(t, stage.files(t)) for t in tables], []
    else:
        replacements, absent = scope.replacements(tables, stage, missing)
    if requests is not None:
        log.info(f"{requests:,} API requests so far; writing")
    started = time.monotonic()
    results = warehouse.write(replacements, days, absent=absent, account=account)
    log.info(
        f"Wrote {sum(r.rows_inserted for r in results):,} rows in {time.monotonic() - started:.1f}s"
    )
    if scope is None:
        return results
    unchanged = scope.unchanged_rows(tables, missing)
    return [replace(r, rows_kept=max(0, r.rows_kept - unchanged.get(r.table, 0))) for r in results]


def write_rows(
    warehouse: WarehouseResource,
    rows: Mapping[Table, list[dict[str, Any]]],
    days: Window | None,
    *,
    scope: ItemScope | None = None,
    missing: Collection[str] = frozenset(),
    account: str | None,
    log: logging.Logger | Any,
    requests: int | None = None,
) -> list[WriteResult]:
    """Write rows built in memory (dicts by column name, per table) as :func:`write_staged`
    writes staged ones, the other arguments meaning the same: each table of ``rows`` is
    staged, then all are written in one transaction."""
    with warehouse.staging() as stage:
        for table, table_rows in rows.items():
            stage.append(table, rows_table(table, table_rows))
        return write_staged(
            warehouse,
            stage,
            list(rows),
            days,
            scope=scope,
            missing=missing,
            account=account,
            log=log,
            requests=requests,
        )


def merge_listing(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    rows: Mapping[Table, list[dict[str, Any]]],
    checks: Sequence[WarehouseCheck],
    *,
    seen_at: datetime,
    account: str,
    requests: int,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Merge a catalogue's complete listing (rows per table, each seen at ``seen_at``) by
    presence: what it no longer lists is kept, flagged ``present = false``. Then report each
    table and evaluate its ``checks`` on the whole table."""
    seen = {"present": True, "first_seen_at": seen_at, "last_seen_at": seen_at}
    listing = {table: [{**row, **seen} for row in table_rows] for table, table_rows in rows.items()}
    results = write_rows(
        warehouse, listing, None, account=account, log=context.log, requests=requests
    )
    yield from presence_results(context.log, results, rows, api_requests=requests)
    yield from inline_results(context, warehouse, checks, None)
