"""Asset specs and metadata derived from the warehouse's table descriptions."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

import dagster as dg

from spotler_pipeline.defs.config import FILE_POOL
from spotler_pipeline.warehouse import Table, WriteResult

POOL = FILE_POOL
"""Concurrency pool of every step that opens the DuckDB file (limit 1 in dagster.yaml):
DuckDB admits a single writing process, so backfill runs take turns for the file. On a lake
the steps use ``DeploymentSettings.pool`` (``spotler_api``) instead."""

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

DAILY_FRESHNESS = dg.FreshnessPolicy.time_window(
    warn_window=timedelta(hours=26), fail_window=timedelta(hours=50)
)


def asset_key(table: Table) -> dg.AssetKey:
    return dg.AssetKey(["spotler", table.name])


def column_schema(table: Table) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(c.name, c.type, description=c.description) for c in table.columns]
    )


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


def write_metadata(
    result: WriteResult,
    *,
    api_requests: int,
    window: str | None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Materialization metadata for one table written by a run."""
    meta: dict[str, Any] = {
        "dagster/row_count": dg.MetadataValue.int(result.rows_inserted),
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
) -> Iterator[dg.MaterializeResult]:
    """One ``MaterializeResult`` per written table, keyed ``spotler/<table>`` (results for
    other tables, e.g. a catalogue flagged by the write, are left to the caller)."""
    by_name = {t.name: t for t in tables}
    for result in results:
        if result.table not in by_name:
            continue
        yield dg.MaterializeResult(
            asset_key=asset_key(by_name[result.table]),
            metadata=write_metadata(result, api_requests=api_requests, window=window, extra=extra),
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
