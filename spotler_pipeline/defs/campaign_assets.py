"""Assets of automated campaigns: the campaign catalogue and every campaign interaction.

The catalogue (campaigns, triggers, message steps, links; endpoints 16-18) is small and has
no dates, so it is read whole every day and merged by presence: what Spotler stops listing
stays, marked ``present = false``. Interactions (endpoints 19, 20, 22, 24) are fetched per
event day with ``fromDate``/``toDate`` for every step of every campaign and streamed through
the staging area like the mailing interactions, then replace their day partitions at once.
"""

from collections.abc import Iterator
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
from spotler_pipeline.defs.catalogue_rows import row_for
from spotler_pipeline.defs.checks import checks_for
from spotler_pipeline.defs.config import DeploymentSettings
from spotler_pipeline.defs.fetching import each_or_none
from spotler_pipeline.defs.interactions import Interactions, Item, Report, interaction_assets
from spotler_pipeline.defs.metadata import table_spec, writing_step
from spotler_pipeline.defs.partitions import daily_partitions
from spotler_pipeline.defs.resources import ClockResource, SpotlerResource, WarehouseResource
from spotler_pipeline.defs.schedules import automated_group, daily_after_upstream
from spotler_pipeline.defs.writing import merge_listing
from spotler_pipeline.warehouse import Table
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

GROUP = "campaigns"


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


def _catalog_rows(
    listing: list[tuple[Campaign, list[CampaignMailing]]],
    details: dict[str, CampaignMailingDetails],
) -> dict[Table, list[dict[str, Any]]]:
    rows: dict[Table, list[dict[str, Any]]] = {t: [] for t in CAMPAIGN_CATALOG_TABLES}
    for campaign, steps in listing:
        rows[CAMPAIGNS].append(
            row_for(
                CAMPAIGNS,
                campaign,
                trigger_names=[t.name for t in campaign.triggers],
                step_count=len(steps),
            )
        )
        rows[CAMPAIGN_TRIGGERS].extend(
            row_for(CAMPAIGN_TRIGGERS, t, campaign_id=campaign.encrypted_id)
            for t in campaign.triggers
        )
        for position, step in enumerate(steps):
            detail = details.get(step.encrypted_id or "")
            if detail is None:  # deleted after the listing: not listed any more
                continue
            rows[CAMPAIGN_MAILINGS].append(
                row_for(
                    CAMPAIGN_MAILINGS,
                    detail,
                    encrypted_id=step.encrypted_id,
                    campaign_id=campaign.encrypted_id,
                    position=position,
                    name=detail.name or step.name,
                    type=detail.type or step.type,
                    link_count=len(detail.links),
                )
            )
            rows[CAMPAIGN_MAILING_LINKS].extend(
                row_for(CAMPAIGN_MAILING_LINKS, link, campaign_mailing_id=step.encrypted_id)
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
        batch = batch.filter(keep)  # a null (no timestamp) is dropped, like a false
        values = batch.column(batch.schema.get_field_index(column))
        day = pc.cast(pc.local_timestamp(values.cast(local)), pa.date32(), safe=False)
        yield batch.append_column(EVENT_DAY.name, day)


#: Each interaction table, and the client's report of one step over a time range that fills it.
CAMPAIGN_REPORTS = {
    CAMPAIGN_MAILING_RECIPIENTS: Report(
        SpotlerClient.campaign_mailing_recipient_batches,
        "Every send of a campaign message to a contact, one row per subscription (a contact "
        "passing a campaign twice has two). Source: `GET /campaign-mailing/{id}/recipients`.",
    ),
    CAMPAIGN_MAILING_OPENS: Report(
        SpotlerClient.campaign_mailing_open_batches,
        "Every open of a campaign message. Source: `GET /campaign-mailing/{id}/opens`.",
    ),
    CAMPAIGN_MAILING_CLICKS: Report(
        SpotlerClient.campaign_mailing_click_batches,
        "Every click on a link of a campaign message, with the link "
        "(`campaign_mailing_links`). Source: `GET /campaign-mailing/{id}/clicks`.",
    ),
    CAMPAIGN_MAILING_BOUNCES: Report(
        SpotlerClient.campaign_mailing_bounce_batches,
        "Every hard and soft bounce of a campaign message. Source: "
        "`GET /campaign-mailing/{id}/bounces`.",
    ),
}


def _step_items(client: SpotlerClient, window: dg.TimeWindow) -> list[Item]:
    """Every step of every campaign Spotler lists, each with its campaign."""
    return [
        Item(step.encrypted_id or "", {"campaign_id": campaign.encrypted_id})
        for campaign, steps in campaign_steps(client)
        for step in steps
    ]


def build_campaign_assets(settings: DeploymentSettings) -> list[dg.AssetsDefinition]:
    tz = settings.timezone
    event_days = daily_partitions(settings.partitions_start, tz)
    checks = campaign_checks()
    catalog_checks = checks_for(checks, CAMPAIGN_CATALOG_TABLES)

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

    @writing_step(
        "spotler_campaigns",
        [
            table_spec(
                table,
                group=GROUP,
                description=description,
                deps=[] if table is CAMPAIGNS else [CAMPAIGNS],
                automation_condition=daily_after_upstream(tz),
            )
            for table, description in catalog_descriptions.items()
        ],
        catalog_checks,
        pool=settings.pool,
    )
    def spotler_campaigns(
        context: dg.AssetExecutionContext,
        spotler: SpotlerResource,
        warehouse: WarehouseResource,
        clock: ClockResource,
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        seen_at = clock.now(tz)
        with spotler.get_client(warehouse.contact_key()) as client:
            listing = campaign_steps(client)
            steps = [s for _, campaign_steps_ in listing for s in campaign_steps_]
            context.log.info(
                f"{len(listing)} campaigns with {len(steps)} message steps listed by Spotler"
            )
            fetched = each_or_none(
                lambda s: client.get_campaign_mailing(s.encrypted_id or ""),
                steps,
                workers=spotler.max_concurrent_requests,
                log=context.log,
                what="Details",
                noun="campaign steps",
            )
            requests = client.request_count
        details = {
            s.encrypted_id or "": d for s, d in zip(steps, fetched, strict=True) if d is not None
        }
        yield from merge_listing(
            context,
            warehouse,
            _catalog_rows(listing, details),
            catalog_checks,
            seen_at=seen_at,
            account=spotler.account(),
            requests=requests,
        )

    def pages(
        client: SpotlerClient, table: Table, step_id: str, window: dg.TimeWindow
    ) -> Iterator[pa.RecordBatch]:
        report = CAMPAIGN_REPORTS[table].batches(client, step_id, window.start, window.end)
        return by_event_day(report, EVENT_TIME_COLUMN[table.name], window.start, window.end, tz)

    interactions = interaction_assets(
        Interactions(
            name="spotler_campaign_interactions",
            group=GROUP,
            reports=CAMPAIGN_REPORTS,
            partitioned_by=(
                "Partitioned by the day of the event; the last "
                f"{settings.campaign_refresh_days} days are re-loaded daily so events Spotler "
                "reports late still land."
            ),
            catalogue=CAMPAIGN_MAILINGS,
            item_column="campaign_mailing_id",
            items="campaign_steps",
            list_items=_step_items,
            pages=pages,
            checks=checks_for(checks, CAMPAIGN_INTERACTION_TABLES),
            # After the catalogue: the steps it reads are then the ones just listed.
            automation_condition=daily_after_upstream(tz, days=settings.campaign_refresh_days),
        ),
        event_days,
        settings.pool,
    )
    return [spotler_campaigns, interactions]


def build_campaign_definitions(settings: DeploymentSettings) -> dg.Definitions:
    """Campaign assets, checks and jobs, to merge into the code location."""
    catalog, interactions = build_campaign_assets(settings)
    return automated_group(
        {
            "spotler_campaigns_catalog": (
                catalog,
                "The campaign catalogue: campaigns, triggers, steps and links.",
            ),
            "spotler_campaign_interactions_refresh": (
                interactions,
                "Campaign sends, opens, clicks and bounces for a range of event days.",
            ),
        },
        ("spotler_campaigns_all_days", campaign_checks()),
        settings.timezone,
        # The catalogue's freshness is its FreshnessPolicy; day partitions also get a deadline.
        deadline=[interactions],
    )
