"""Assets of automated campaigns: the campaign catalogue and every campaign interaction.

The catalogue (campaigns, triggers, message steps, links; endpoints 16-18) is small and has
no dates, so it is read whole every day and merged by presence: what Spotler stops listing
stays, marked ``present = false``. Interactions (endpoints 19, 20, 22, 24) are fetched per
event day with ``fromDate``/``toDate`` for every step of every campaign and streamed through
the staging area like the mailing interactions, then replace their day partitions at once.
"""

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from spotler_pipeline.client import (
    Campaign,
    CampaignMailing,
    CampaignMailingDetails,
    SpotlerClient,
    SpotlerNotFoundError,
)
from spotler_pipeline.defs.campaign_checks import campaign_checks
from spotler_pipeline.defs.checks import checks_for, inline_results, written_window
from spotler_pipeline.defs.config import DeploymentSettings
from spotler_pipeline.defs.fetching import FetchTask, ItemScope, fetch_and_replace
from spotler_pipeline.defs.metadata import (
    asset_key,
    materialize_results,
    report_kept,
    table_spec,
    window_text,
    write_metadata,
)
from spotler_pipeline.defs.partitions import check_partition_range, daily_partitions
from spotler_pipeline.defs.resources import ClockResource, SpotlerResource, WarehouseResource
from spotler_pipeline.defs.schedules import daily_after_upstream
from spotler_pipeline.warehouse import Replacement, Table
from spotler_pipeline.warehouse.campaign_tables import (
    CAMPAIGN_CATALOG_TABLES,
    CAMPAIGN_INTERACTION_TABLES,
    CAMPAIGN_MAILING_BOUNCES,
    CAMPAIGN_MAILING_CLICKS,
    CAMPAIGN_MAILING_LINKS,
    CAMPAIGN_MAILING_OPENS,
    CAMPAIGN_MAILING_RECIPIENTS,
    CAMPAIGN_MAILINGS,
    CAMPAIGN_TRIGGERS,
    CAMPAIGNS,
    EVENT_DAY,
    EVENT_TIME_COLUMN,
)
from spotler_pipeline.warehouse.writes import PresenceResult

GROUP = "campaigns"


def presence_metadata(result: PresenceResult, api_requests: int) -> dict[str, Any]:
    return write_metadata(
        result,
        api_requests=api_requests,
        window=None,
        extra={
            "rows_new": dg.MetadataValue.int(result.rows_new),
            "rows_no_longer_listed": dg.MetadataValue.int(result.rows_gone),
        },
    )


def rows_table(table: Table, rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=table.arrow_schema)


def campaign_steps(client: SpotlerClient) -> list[tuple[Campaign, list[CampaignMailing]]]:
    """Every campaign with its message steps (endpoints 16 and 17); a campaign deleted
    between the two calls (404) is left out, as Spotler no longer lists it."""
    listing = []
    for campaign in client.list_campaigns():
        try:
            steps = client.list_campaign_mailings(campaign.encrypted_id or "")
        except SpotlerNotFoundError:
            continue
        listing.append((campaign, steps))
    return listing


def _details_or_none(client: SpotlerClient, step: CampaignMailing) -> CampaignMailingDetails | None:
    try:
        return client.get_campaign_mailing(step.encrypted_id or "")
    except SpotlerNotFoundError:
        return None


def _catalog_rows(
    listing: list[tuple[Campaign, list[CampaignMailing]]],
    details: dict[str, CampaignMailingDetails],
    seen_at: datetime,
) -> dict[Table, list[dict[str, Any]]]:
    seen = {"present": True, "first_seen_at": seen_at, "last_seen_at": seen_at}
    rows: dict[Table, list[dict[str, Any]]] = {t: [] for t in CAMPAIGN_CATALOG_TABLES}
    for campaign, steps in listing:
        rows[CAMPAIGNS].append(
            {
                "encrypted_id": campaign.encrypted_id,
                "name": campaign.name,
                "active": campaign.active,
                "trigger_names": [t.name for t in campaign.triggers],
                "step_count": len(steps),
                **seen,
            }
        )
        rows[CAMPAIGN_TRIGGERS].extend(
            {
                "campaign_id": campaign.encrypted_id,
                "trigger_id": t.encrypted_id,
                "name": t.name,
                **seen,
            }
            for t in campaign.triggers
        )
        for position, step in enumerate(steps):
            detail = details.get(step.encrypted_id or "")
            if detail is None:  # deleted after the listing: not listed any more
                continue
            msg = detail.message
            rows[CAMPAIGN_MAILINGS].append(
                {
                    "encrypted_id": step.encrypted_id,
                    "campaign_id": campaign.encrypted_id,
                    "position": position,
                    "name": detail.name or step.name,
                    "type": detail.type or step.type,
                    "message_name": msg.name if msg else None,
                    "message_author": msg.author if msg else None,
                    "subject": msg.subject if msg else None,
                    "from_name": msg.from_name if msg else None,
                    "from_email": msg.from_email if msg else None,
                    "link_count": len(detail.links),
                    **seen,
                }
            )
            rows[CAMPAIGN_MAILING_LINKS].extend(
                {
                    "campaign_mailing_id": step.encrypted_id,
                    "link_id": link.id,
                    "name": link.name,
                    "url": link.url,
                    "code": link.code,
                    "type": link.type,
                    **seen,
                }
                for link in detail.links
            )
    return rows


def by_event_day(
    pages: Iterator[pa.RecordBatch], column: str, start: datetime, end: datetime, timezone: str
) -> Iterator[pa.RecordBatch]:
    """The rows with ``start <= column < end``, each with its ``event_day``: the day of
    ``column`` in ``timezone``.

    One listing covers a run's whole window (31 days of a backfill in one request per step
    and kind, not one per day); the rows are split into their event days here. Spotler's
    ``toDate`` is inclusive, so an event at exactly ``end`` belongs to the next run.
    """
    lo = pa.scalar(start, pa.timestamp("us", tz="UTC"))
    hi = pa.scalar(end, pa.timestamp("us", tz="UTC"))
    local = pa.timestamp("us", tz=timezone)
    for batch in pages:
        values = batch.column(batch.schema.get_field_index(column))
        keep = pc.and_(pc.greater_equal(values, lo), pc.less(values, hi))
        batch = batch.filter(pc.fill_null(keep, False))
        values = batch.column(batch.schema.get_field_index(column))
        day = pc.cast(pc.local_timestamp(values.cast(local)), pa.date32(), safe=False)
        yield batch.append_column(EVENT_DAY.name, day)


def build_campaign_assets(settings: DeploymentSettings) -> list[dg.AssetsDefinition]:
    tz = settings.timezone
    event_days = daily_partitions(settings.partitions_start, tz)
    backfill = dg.BackfillPolicy.multi_run(max_partitions_per_run=31)
    checks = campaign_checks()
    catalog_checks = checks_for(checks, CAMPAIGN_CATALOG_TABLES)
    interaction_checks = checks_for(checks, CAMPAIGN_INTERACTION_TABLES)

    catalog_descriptions = {
        CAMPAIGNS: (
            "Automated campaigns (welcome series, abandoned cart, birthday, ...): whether "
            "each is switched on and what triggers it. Refreshed whole daily; a campaign "
            "Spotler no longer lists is kept with `present = false`. Source: "
            "`GET /campaign/list`."
        ),
        CAMPAIGN_TRIGGERS: (
            "The events that enter a contact into each campaign (one row per trigger). "
            "Source: `GET /campaign/list`."
        ),
        CAMPAIGN_MAILINGS: (
            "The message steps (e-mails and SMS) of each campaign in order, with subject "
            "and sender. A step removed from its campaign is kept with `present = false`. "
            "Sources: `GET /campaign/{id}/mailing` and `GET /campaign-mailing/{id}`."
        ),
        CAMPAIGN_MAILING_LINKS: (
            "The trackable links of each campaign message: what "
            "`campaign_mailing_clicks.link_id` refers to. Source: `GET /campaign-mailing/{id}`."
        ),
    }

    @dg.multi_asset(
        name="spotler_campaigns",
        specs=[
            table_spec(
                table,
                group=GROUP,
                description=description,
                deps=[] if table is CAMPAIGNS else [CAMPAIGNS],
                automation_condition=daily_after_upstream(tz),
            )
            for table, description in catalog_descriptions.items()
        ],
        pool=settings.pool,
        check_specs=[c.spec() for c in catalog_checks],
    )
    def spotler_campaigns(
        context: dg.AssetExecutionContext,
        spotler: SpotlerResource,
        warehouse: WarehouseResource,
        clock: ClockResource,
    ) -> Iterator[dg.MaterializeResult]:
        seen_at = clock.now(tz)
        with spotler.get_client() as client:
            listing = campaign_steps(client)
            steps = [s for _, campaign_steps_ in listing for s in campaign_steps_]
            context.log.info(
                f"{len(listing)} campaigns with {len(steps)} message steps listed by Spotler"
            )
            with ThreadPoolExecutor(spotler.max_concurrent_requests) as pool:
                fetched = list(pool.map(lambda s: _details_or_none(client, s), steps))
            requests = client.request_count
        details = {
            s.encrypted_id or "": d for s, d in zip(steps, fetched, strict=True) if d is not None
        }
        rows = _catalog_rows(listing, details, seen_at)
        with warehouse.staging() as stage:
            for table, table_rows in rows.items():
                stage.append(table, rows_table(table, table_rows))
            results = warehouse.merge(
                [Replacement(t, stage.files(t)) for t in CAMPAIGN_CATALOG_TABLES],
                account=spotler.account(),
            )
        by_name = {t.name: t for t in CAMPAIGN_CATALOG_TABLES}
        for result in results:
            if result.rows_gone:
                context.log.warning(
                    f"{result.rows_gone} {result.table} no longer listed by Spotler; "
                    "kept with present = false"
                )
            yield dg.MaterializeResult(
                asset_key=asset_key(by_name[result.table]),
                metadata=presence_metadata(result, requests),
            )
        yield from inline_results(context, warehouse, catalog_checks, None)

    interaction_specs = {
        CAMPAIGN_MAILING_RECIPIENTS: (
            "Every send of a campaign message to a contact, one row per subscription "
            "(a contact passing a campaign twice has two). Source: "
            "`GET /campaign-mailing/{id}/recipients`."
        ),
        CAMPAIGN_MAILING_OPENS: (
            "Every open of a campaign message. Source: `GET /campaign-mailing/{id}/opens`."
        ),
        CAMPAIGN_MAILING_CLICKS: (
            "Every click on a link of a campaign message, with the link "
            "(`campaign_mailing_links`). Source: `GET /campaign-mailing/{id}/clicks`."
        ),
        CAMPAIGN_MAILING_BOUNCES: (
            "Every hard and soft bounce of a campaign message. Source: "
            "`GET /campaign-mailing/{id}/bounces`."
        ),
    }

    @dg.multi_asset(
        name="spotler_campaign_interactions",
        specs=[
            table_spec(
                table,
                group=GROUP,
                partitions_def=event_days,
                deps=[CAMPAIGN_MAILINGS],
                description=(
                    f"{description} Partitioned by the day of the event; the last "
                    f"{settings.campaign_refresh_days} days are re-loaded daily so events "
                    "Spotler reports late still land."
                ),
                skippable=True,
                # After the catalogue: the steps it reads are then the ones just listed.
                automation_condition=daily_after_upstream(tz, days=settings.campaign_refresh_days),
            )
            for table, description in interaction_specs.items()
        ],
        partitions_def=event_days,
        backfill_policy=backfill,
        can_subset=True,
        pool=settings.pool,
        check_specs=[c.spec() for c in interaction_checks],
    )
    def spotler_campaign_interactions(
        context: dg.AssetExecutionContext, spotler: SpotlerResource, warehouse: WarehouseResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        check_partition_range(context)
        window = context.partition_time_window
        tables = [t for t in interaction_specs if asset_key(t) in context.selected_asset_keys]
        with spotler.get_client() as client:
            listing = campaign_steps(client)
            sources: dict[Table, Callable[[str, datetime, datetime], Iterator[pa.RecordBatch]]]
            sources = {
                CAMPAIGN_MAILING_RECIPIENTS: client.campaign_mailing_recipient_batches,
                CAMPAIGN_MAILING_OPENS: client.campaign_mailing_open_batches,
                CAMPAIGN_MAILING_CLICKS: client.campaign_mailing_click_batches,
                CAMPAIGN_MAILING_BOUNCES: client.campaign_mailing_bounce_batches,
            }
            steps = [(c, s) for c, campaign_steps_ in listing for s in campaign_steps_]
            context.log.info(
                f"{len(listing)} campaigns with {len(steps)} message steps; fetching "
                + ", ".join(t.name for t in tables)
                + f" for {window_text(context.partition_keys)} (one listing each, split "
                "into event days here)"
            )
            tasks = [
                FetchTask(
                    table=table,
                    pages=(
                        lambda src=sources[table], sid=step.encrypted_id, t=table: by_event_day(
                            src(sid, window.start, window.end),
                            EVENT_TIME_COLUMN[t.name],
                            window.start,
                            window.end,
                            tz,
                        )
                    ),
                    constants={
                        "campaign_id": campaign.encrypted_id,
                        "campaign_mailing_id": step.encrypted_id,
                    },
                    item=step.encrypted_id,
                )
                for campaign, step in steps
                for table in tables
            ]
            written = fetch_and_replace(
                warehouse,
                tasks,
                tables,
                window.start.date(),
                window.end.date(),
                scope=ItemScope(
                    "campaign_mailing_id",
                    [step.encrypted_id or "" for _, step in steps],
                    CAMPAIGN_MAILINGS,
                ),
                account=spotler.account(),
                max_workers=spotler.max_concurrent_requests,
                log=context.log,
            )
            requests = client.request_count
        kept = report_kept(context.log, written.results, written.missing, "campaign_steps")
        yield from materialize_results(
            written.results,
            tables,
            api_requests=requests,
            window=window_text(context.partition_keys),
            extra={"campaign_steps": dg.MetadataValue.int(len(steps)), **kept},
        )
        yield from inline_results(
            context, warehouse, interaction_checks, written_window(window.start, window.end)
        )

    return [spotler_campaigns, spotler_campaign_interactions]


def build_campaign_definitions(settings: DeploymentSettings) -> dg.Definitions:
    """Campaign assets, checks, jobs and schedules, to merge into the code location."""
    from spotler_pipeline.defs.checks import nightly_checks
    from spotler_pipeline.defs.schedules import freshness_checks

    catalog, interactions = build_campaign_assets(settings)
    catalog_job = dg.define_asset_job(
        "spotler_campaigns_catalog",
        selection=dg.AssetSelection.assets(catalog),
        description="The campaign catalogue: campaigns, triggers, steps and links.",
    )
    interactions_job = dg.define_asset_job(
        "spotler_campaign_interactions_refresh",
        selection=dg.AssetSelection.assets(interactions),
        description="Campaign sends, opens, clicks and bounces for a range of event days.",
    )
    # The catalogue's freshness is its FreshnessPolicy; day partitions also get a deadline.
    freshness = freshness_checks([interactions], settings.timezone)
    return dg.Definitions(
        assets=[catalog, interactions],
        asset_checks=[nightly_checks("spotler_campaigns_all_days", campaign_checks()), *freshness],
        # No schedules: the assets' automation conditions refresh them daily, in order.
        jobs=[catalog_job, interactions_job],
    )
