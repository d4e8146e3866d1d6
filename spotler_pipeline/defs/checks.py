"""Asset checks that read the warehouse. Each can fail, and shows the offending rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import dagster as dg
import duckdb

from spotler_pipeline.defs.metadata import asset_key
from spotler_pipeline.defs.resources import WarehouseResource
from spotler_pipeline.warehouse import Table
from spotler_pipeline.warehouse.quality import Finding, duplicate_keys

Query = Callable[[duckdb.DuckDBPyConnection], Finding]


def result_of(
    finding: Finding, *, what: str, severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR
) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=finding.passed,
        severity=severity,
        description=(
            f"{finding.checked:,} checked, no {what}"
            if finding.passed
            else f"{finding.problems:,} {what} among {finding.checked:,} checked: "
            + "; ".join(_row_text(row) for row in finding.sample[:3])
            + ("; ..." if finding.problems > 3 else "")
        ),
        metadata={
            "checked": dg.MetadataValue.int(finding.checked),
            "problems": dg.MetadataValue.int(finding.problems),
            "sample": dg.MetadataValue.json(finding.sample),
        },
    )


def _row_text(row: dict[str, object]) -> str:
    """One offending row, named in the check's description (the UI shows it first)."""
    return ", ".join(
        f"{k} {v:,}" if isinstance(v, int) and not isinstance(v, bool) else f"{k} {v}"
        for k, v in row.items()
    )


def run_query(warehouse: WarehouseResource, query: Query) -> Finding:
    with warehouse.read() as conn:
        return query(conn)


def warehouse_check(
    table: Table,
    name: str,
    description: str,
    query: Query,
    what: str,
    *,
    additional_deps: Sequence[Table] = (),
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
) -> dg.AssetChecksDefinition:
    """An asset check on ``table`` that passes when ``query`` finds no problem rows.

    It reads the published copy that every write refreshes, so it needs no slot of the
    DuckDB pool and never holds up a run.
    """

    @dg.asset_check(
        asset=asset_key(table),
        name=name,
        description=description,
        additional_deps=[asset_key(t) for t in additional_deps],
    )
    def _check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        return result_of(run_query(warehouse, query), what=what, severity=severity)

    return _check


def primary_key_checks(tables: Sequence[Table]) -> list[dg.AssetChecksDefinition]:
    return [
        warehouse_check(
            table,
            "primary_key_unique",
            f"No two rows of {table.qualified_name} share ({', '.join(table.primary_key)}).",
            lambda conn, t=table: duplicate_keys(conn, t),
            "duplicated keys",
        )
        for table in tables
    ]
