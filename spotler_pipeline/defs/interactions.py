"""The interaction assets (recipients, opens, clicks, bounces) of one-off mailings and of
campaign steps, built by one function.

Both are the same step: list the items of the run's window (the mailings sent in it, or
every campaign step), stream each item's reports for the window into the staging area,
replace the window for the items fetched (an item that answered 404 keeps its rows and is
flagged in its catalogue), then report metadata and the inline checks. What differs is data,
an :class:`Interactions`: which client calls, which constants each row gets, which catalogue
lists the items.
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import pyarrow as pa

from spotler_pipeline.client import SpotlerClient
from spotler_pipeline.defs.checks import WarehouseCheck, inline_results
from spotler_pipeline.defs.fetching import FetchTask, complete_items, fetch_and_write
from spotler_pipeline.defs.metadata import (
    materialize_results,
    report_kept,
    selected_tables,
    table_spec,
    writing_step,
)
from spotler_pipeline.defs.partitions import run_days
from spotler_pipeline.defs.resources import SpotlerResource, WarehouseResource
from spotler_pipeline.defs.writing import ItemScope, Unchanged
from spotler_pipeline.warehouse import Table
from spotler_pipeline.warehouse.quality import Window


@dataclass(frozen=True)
class Item:
    """One item whose interactions are fetched: a mailing, or a campaign step."""

    id: str
    #: columns the reports lack, added to every row (besides the item's own id column)
    constants: Mapping[str, Any] = field(default_factory=dict)
    #: the rows of the stated report Spotler says the item has (a mailing's sentCount)
    stated_rows: int | None = None


@dataclass(frozen=True)
class Report:
    """What fills one interaction table: the client's paged report of one item, and what
    the table holds (its asset's description)."""

    batches: Callable[..., Iterator[pa.RecordBatch]]
    description: str


@dataclass(frozen=True)
class StatedReport:
    """A report whose rows Spotler states per item (a mailing's recipients: its sentCount).
    A listing short of it is warned of; an item already stored in full is kept as it is
    instead of being read again (a sent mailing's recipients do not change)."""

    table: Table
    #: what its rows are, in the log and in metadata (``<items>_<noun>_complete_kept``)
    noun: str


@dataclass(frozen=True)
class Interactions:
    """What differs between the interaction assets of mailings and of campaign steps."""

    #: the multi-asset's name
    name: str
    group: str
    #: the tables and their reports, longest first (fetched first)
    reports: Mapping[Table, Report]
    #: how the tables are partitioned, added to each description
    partitioned_by: str
    #: the table listing the items: upstream of every interaction table, and where an item
    #: that answers 404 is flagged ``present = false``
    catalogue: Table
    #: the column naming the item in the interaction rows
    item_column: str
    #: the items, as named in the log and in metadata ("mailings", "campaign_steps")
    items: str
    list_items: Callable[[SpotlerClient, dg.TimeWindow], list[Item]]
    #: one item's pages of ``table``'s report for the run's window
    pages: Callable[[SpotlerClient, Table, str, dg.TimeWindow], Iterator[pa.RecordBatch]]
    checks: Sequence[WarehouseCheck]
    stated: StatedReport | None = None
    automation_condition: dg.AutomationCondition | None = None


def interaction_assets(
    spec: Interactions, partitions_def: dg.PartitionsDefinition, pool: str
) -> dg.AssetsDefinition:
    """The multi-asset writing ``spec``'s interaction tables, one partition range a run."""

    @writing_step(
        spec.name,
        [
            table_spec(
                table,
                group=spec.group,
                partitions_def=partitions_def,
                deps=[spec.catalogue],
                description=f"{report.description} {spec.partitioned_by}",
                skippable=True,
                automation_condition=spec.automation_condition,
            )
            for table, report in spec.reports.items()
        ],
        spec.checks,
        pool=pool,
        partitions_def=partitions_def,
    )
    def _interactions(
        context: dg.AssetExecutionContext, spotler: SpotlerResource, warehouse: WarehouseResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        run = run_days(context)
        tables = selected_tables(context, spec.reports)
        stated = spec.stated.table if spec.stated else None
        with spotler.get_client(warehouse.contact_key()) as client:
            items = spec.list_items(client, run.window)
            complete = _stored_in_full(spec, tables, warehouse, items, run.days)
            context.log.info(_plan_text(spec, items, tables, complete, run.text))
            tasks = [
                FetchTask(
                    table=table,
                    pages=(lambda t=table, i=item.id: spec.pages(client, t, i, run.window)),
                    constants={spec.item_column: item.id, **item.constants},
                    expected_rows=item.stated_rows if table is stated else None,
                    item=item.id,
                )
                for item in items
                for table in tables
                if not (table is stated and item.id in complete)
            ]
            written = fetch_and_write(
                warehouse,
                tasks,
                tables,
                run.days,
                scope=ItemScope(
                    spec.item_column,
                    [item.id for item in items],
                    spec.catalogue,
                    unchanged=[Unchanged(stated, complete)] if stated and complete else [],
                ),
                account=spotler.account(),
                max_workers=spotler.max_concurrent_requests,
                log=context.log,
                requests=lambda: client.request_count,
            )
            requests = client.request_count
        kept = report_kept(context.log, written.results, written.missing, spec.items)
        if spec.stated:
            name = f"{spec.items}_{spec.stated.noun}_complete_kept"
            kept[name] = dg.MetadataValue.int(len(complete))
        yield from materialize_results(
            written.results,
            tables,
            api_requests=requests,
            window=run.text,
            repeated=written.repeated,
            extra={
                spec.items: dg.MetadataValue.int(len(items)),
                "fetch_seconds": dg.MetadataValue.float(round(written.fetch_seconds, 2)),
                "write_seconds": dg.MetadataValue.float(round(written.write_seconds, 2)),
                **kept,
            },
        )
        # Items kept as complete were not rewritten: their checks look at the rest only.
        rewritten = (
            {
                stated.name: run.days.only(
                    spec.item_column, [i.id for i in items if i.id not in complete]
                )
            }
            if stated and complete
            else None
        )
        yield from inline_results(context, warehouse, spec.checks, run.days, rewritten)

    return _interactions


def _stored_in_full(
    spec: Interactions,
    tables: Sequence[Table],
    warehouse: WarehouseResource,
    items: Sequence[Item],
    days: Window,
) -> dict[str, int]:
    """The items whose stated report is stored in full already (as many rows in ``days`` as
    Spotler states): ``{item: rows}``; none when this run does not write that report."""
    if spec.stated is None or spec.stated.table not in tables:
        return {}
    stated = {i.id: i.stated_rows for i in items if i.stated_rows}
    return complete_items(warehouse, spec.stated.table, spec.item_column, stated, days)


def _plan_text(
    spec: Interactions,
    items: Sequence[Item],
    tables: Sequence[Table],
    complete: Mapping[str, int],
    window: str,
) -> str:
    """What the step is about to fetch, for the run log."""
    text = f"{len(items):,} {spec.items} in {window}"
    if spec.stated is not None:
        stated = sum(i.stated_rows or 0 for i in items)
        text += f" ({stated:,} {spec.stated.noun})"
    text += "; fetching " + ", ".join(t.name for t in tables)
    if complete and spec.stated is not None:
        text += (
            f"; the {spec.stated.noun} of {len(complete)} {spec.items} are stored in full "
            f"({sum(complete.values()):,} rows, as many as Spotler states) and kept without "
            "reading them again"
        )
    return text
