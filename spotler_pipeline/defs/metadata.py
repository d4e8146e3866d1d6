"""Asset specs and metadata derived from the warehouse's table descriptions."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import dagster as dg

from spotler_pipeline.defs.config import FILE_POOL
from spotler_pipeline.warehouse import Table, WriteResult
from spotler_pipeline.warehouse.writes import PresenceResult

if TYPE_CHECKING:
    from spotler_pipeline.defs.checks import WarehouseCheck

POOL = FILE_POOL
"""Concurrency pool of every step that opens the DuckDB file (limit 1 in
``deploy/local/dagster.yaml``): DuckDB admits a single writing process, so backfill runs take
turns for the file. On a lake the steps use ``DeploymentSettings.pool`` (``spotler_api``)
instead."""

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

DAILY_FRESHNESS = dg.FreshnessPolicy.time_window(
    warn_window=timedelta(hours=26), fail_window=timedelta(hours=50)
)


def asset_key(table: Table) -> dg.AssetKey:
    return dg.AssetKey(["spotler", table.name])


def column_schema(table: Table) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(c.name, c.type, description=table.describe(c)) for c in table.columns
        ]
    )


def selected_tables(context: dg.AssetExecutionContext, tables: Iterable[Table]) -> list[Table]:
    """The ``tables`` the run selected, in their order (a step may write only some)."""
    return [t for t in tables if asset_key(t) in context.selected_asset_keys]


def table_spec(
    table: Table,
    *,
    group: str,
    description: str,
    deps: Sequence[Table] = (),
    partitions_def: dg.PartitionsDefinition | None = None,
    freshness_policy: dg.FreshnessPolicy | None = DAILY_FRESHNESS,
    skippable: bool = False,
    automation_condition: dg.AutomationCondition | None = None,
) -> dg.AssetSpec:
    """The asset spec of ``table``: key ``spotler/<table>``, column schema, keys, lineage."""
    key_text = ", ".join(table.primary_key)
    return dg.AssetSpec(
        key=asset_key(table),
        description=f"{description}\n\nKey: ({key_text}). DuckDB table `{table.qualified_name}`.",
        deps=[asset_key(d) for d in deps],
        group_name=group,
        partitions_def=partitions_def,
        freshness_policy=freshness_policy,
        kinds={"duckdb"},
        skippable=skippable,
        automation_condition=automation_condition,
        metadata={
            "dagster/column_schema": column_schema(table),
            "dagster/table_name": table.qualified_name,
            "primary_key": key_text,
            "partitioned_by": table.partition_column or "not partitioned (replaced whole)",
        },
    )


#: A backfill of a partitioned step: up to a month of days in one run.
MONTH_PER_RUN = dg.BackfillPolicy.multi_run(max_partitions_per_run=31)


def writing_step(
    name: str,
    specs: Sequence[dg.AssetSpec],
    checks: Sequence[WarehouseCheck],
    *,
    pool: str,
    partitions_def: dg.PartitionsDefinition | None = None,
    backfill_policy: dg.BackfillPolicy | None = MONTH_PER_RUN,
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """The multi-asset of a step that writes the tables of ``specs``: in ``pool`` (the
    DuckDB file's single writer, or the API budget on a lake), with ``checks`` evaluated
    inline on what it wrote; a partitioned one backfills by ``backfill_policy``. A step whose
    tables may each be left out (``skippable`` specs) runs for any subset of them."""
    return dg.multi_asset(
        name=name,
        specs=specs,
        partitions_def=partitions_def,
        backfill_policy=backfill_policy if partitions_def is not None else None,
        can_subset=all(spec.skippable for spec in specs),
        pool=pool,
        check_specs=[c.spec() for c in checks],
    )


def write_metadata(
    result: WriteResult,
    *,
    api_requests: int,
    window: str | None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Materialization metadata for one table written by a run: ``dagster/row_count`` (the
    UI's "Row count") is the whole table's rows after the write, ``rows_written`` the rows
    this run wrote (its ``partition_window``'s days)."""
    table_rows = result.rows_inserted if result.table_rows is None else result.table_rows
    meta: dict[str, Any] = {
        "dagster/row_count": dg.MetadataValue.int(table_rows),
        "rows_written": dg.MetadataValue.int(result.rows_inserted),
        "rows_replaced": dg.MetadataValue.int(result.rows_deleted),
        "rows_kept_not_listed": dg.MetadataValue.int(result.rows_kept),
        "api_requests": dg.MetadataValue.int(api_requests),
    }
    if result.rows_flagged:
        meta["rows_flagged_not_present"] = dg.MetadataValue.int(result.rows_flagged)
    if window is not None:
        meta["partition_window"] = dg.MetadataValue.text(window)
    meta.update(extra or {})
    return meta


def materialize_results(
    results: Iterable[WriteResult],
    tables: Iterable[Table],
    *,
    api_requests: int,
    window: str | None,
    extra: Mapping[str, Any] | None = None,
    repeated: Mapping[str, int] | None = None,
) -> Iterator[dg.MaterializeResult]:
    """One ``MaterializeResult`` per written table, keyed ``spotler/<table>`` (results for
    other tables, e.g. a catalogue flagged by the write, are left to the caller).

    With ``repeated`` (rows per table dropped as repeated across the pages of a listing),
    each table's metadata says how many as ``rows_repeated_across_pages``."""
    by_name = {t.name: t for t in tables}
    for result in results:
        if result.table not in by_name:
            continue
        meta = write_metadata(result, api_requests=api_requests, window=window, extra=extra)
        if repeated is not None:
            meta["rows_repeated_across_pages"] = dg.MetadataValue.int(repeated.get(result.table, 0))
        yield dg.MaterializeResult(asset_key=asset_key(by_name[result.table]), metadata=meta)


def presence_metadata(result: PresenceResult, api_requests: int) -> dict[str, Any]:
    """Materialization metadata for a catalogue merged by presence."""
    return write_metadata(
        result,
        api_requests=api_requests,
        window=None,
        extra={
            "rows_new": dg.MetadataValue.int(result.rows_new),
            "rows_no_longer_listed": dg.MetadataValue.int(result.rows_gone),
        },
    )


def presence_results(
    log: Any, results: Iterable[WriteResult], tables: Iterable[Table], *, api_requests: int
) -> Iterator[dg.MaterializeResult]:
    """One ``MaterializeResult`` per catalogue merged by presence, saying in the run log
    what Spotler no longer lists (kept, flagged ``present = false``)."""
    by_name = {t.name: t for t in tables}
    for result in results:
        assert isinstance(result, PresenceResult), result
        if result.rows_gone:
            log.warning(
                f"{result.rows_gone} {result.table} no longer listed by Spotler; "
                "kept with present = false"
            )
        yield dg.MaterializeResult(
            asset_key=asset_key(by_name[result.table]),
            metadata=presence_metadata(result, api_requests),
        )


def window_text(keys: Iterable[str]) -> str:
    keys = sorted(keys)
    return keys[0] if len(keys) == 1 else f"{keys[0]} .. {keys[-1]} ({len(keys)} days)"


def report_kept(
    log: Any, results: Iterable[WriteResult], missing: Iterable[str], what: str
) -> dict[str, Any]:
    """Say in the run log what a refresh kept because Spotler no longer had it, and return
    the counts as metadata (``what`` names the items, e.g. "mailings")."""
    missing = sorted(missing)
    kept = {r.table: r.rows_kept for r in results if r.rows_kept}
    if missing:
        log.warning(
            f"{len(missing)} {what} answered 404 (deleted in Spotler after they were listed); "
            "their stored rows are kept and flagged present = false"
        )
    if kept:
        log.warning(
            f"Rows of {what} Spotler no longer lists were kept, not deleted (catalogue rows "
            "flagged present = false): " + ", ".join(f"{table} {n:,}" for table, n in kept.items())
        )
    return {
        f"{what}_missing_404": dg.MetadataValue.int(len(missing)),
        "rows_kept_not_listed_total": dg.MetadataValue.int(sum(kept.values())),
    }
