"""Assets of one-off mailings: the mailings and links, statistics snapshots, interactions.

A page of API data reaches its table like this: the interactions asset
(:mod:`~spotler_pipeline.defs.interactions`) asks the client for the send day's mailings
(endpoint 1), then streams each mailing's reports page by page
(:func:`~spotler_pipeline.defs.fetching.fetch_into`) into a local staging area, and finally
replaces the partition's rows in one transaction
(:func:`~spotler_pipeline.defs.writing.write_staged`).
"""

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import dagster as dg
import pyarrow as pa

from spotler_pipeline.client import (
    MailingDetails,
    MailingStatistics,
    MailingSummary,
    SpotlerClient,
)
from spotler_pipeline.defs.catalogue_rows import row_for
from spotler_pipeline.defs.checks import checks_for, inline_results, written_window
from spotler_pipeline.defs.config import DeploymentSettings
from spotler_pipeline.defs.fetching import each_or_none
from spotler_pipeline.defs.interactions import (
    Interactions,
    Item,
    Report,
    StatedReport,
    interaction_assets,
)
from spotler_pipeline.defs.mailing_checks import mailing_checks
from spotler_pipeline.defs.metadata import (
    DAILY_FRESHNESS,
    asset_key,
    column_schema,
    materialize_results,
    report_kept,
    selected_tables,
    table_spec,
    write_metadata,
    writing_step,
)
from spotler_pipeline.defs.partitions import daily_partitions, run_days
from spotler_pipeline.defs.resources import ClockResource, SpotlerResource, WarehouseResource
from spotler_pipeline.defs.writing import ItemScope, write_rows
from spotler_pipeline.warehouse import Table, WriteResult
from spotler_pipeline.warehouse.mailing_tables import (
    MAILING_BOUNCES,
    MAILING_CLICKS,
    MAILING_INTERACTION_TABLES,
    MAILING_LINKS,
    MAILING_OPENS,
    MAILING_RECIPIENTS,
    MAILING_STATS_SNAPSHOTS,
    MAILINGS,
)
from spotler_pipeline.warehouse.quality import Window

GROUP = "mailings"


def mailings_in_window(
    client: SpotlerClient, start: datetime, end: datetime
) -> list[MailingSummary]:
    """Mailings whose send started in ``[start, end)`` (endpoint 1, filtered exactly)."""
    return [
        m
        for m in client.list_mailings(start, end)
        if m.scheduled_start_date is not None and start <= m.scheduled_start_date < end
    ]


def _send_day(mailing: MailingSummary, tz: Any) -> Any:
    assert mailing.scheduled_start_date is not None
    return mailing.scheduled_start_date.astimezone(tz).date()


def statistics_of(
    client: SpotlerClient,
    mailings: Sequence[MailingSummary],
    workers: int,
    log: Any,
    progress_interval: float = 10.0,
) -> list[Any]:
    """Each mailing's statistics now (``None`` for one deleted since it was listed), one
    request per mailing and ``workers`` at once, saying how far it got every
    ``progress_interval`` seconds (:func:`~spotler_pipeline.defs.fetching.each_or_none`)."""
    return each_or_none(
        lambda m: client.get_mailing_statistics(m.encrypted_id),
        mailings,
        workers=workers,
        log=log,
        what="Statistics",
        noun="mailings",
        progress_interval=progress_interval,
    )


def _mailing_row(details: MailingDetails, send_day: Any) -> dict[str, Any]:
    return row_for(
        MAILINGS,
        details,
        send_day=send_day,
        link_count=len(details.links),
        present=True,
    )


def _link_rows(details: MailingDetails, send_day: Any) -> list[dict[str, Any]]:
    return [
        row_for(
            MAILING_LINKS,
            link,
            send_day=send_day,
            mailing_id=details.encrypted_id,
        )
        for link in details.links
    ]


def _snapshot_row(
    summary: MailingSummary, stat: MailingStatistics, now: datetime
) -> dict[str, Any]:
    send_day = _send_day(summary, now.tzinfo)
    return row_for(
        MAILING_STATS_SNAPSHOTS,
        stat,
        snapshot_day=now.date(),
        snapshot_at=now,
        mailing_id=summary.encrypted_id,
        send_day=send_day,
        days_since_send=(now.date() - send_day).days,
    )


def _write_for_mailings(
    warehouse: WarehouseResource,
    rows: Mapping[Table, list[dict[str, Any]]],
    days: Window,
    mailings: Sequence[MailingSummary],
    answers: Sequence[Any],
    *,
    account: str,
    log: Any,
    requests: int,
) -> tuple[list[WriteResult], dict[str, Any]]:
    """Write ``rows`` of the ``mailings`` listed for ``days``. A mailing whose answer (its
    details, its statistics) is ``None`` answered 404, deleted in Spotler since it was
    listed: it keeps its stored rows, flagged in ``spotler.mailings``. Returns the results,
    and what was kept as metadata (said in the log too)."""
    ids = [m.encrypted_id for m in mailings]
    missing = {i for i, answer in zip(ids, answers, strict=True) if answer is None}
    results = write_rows(
        warehouse,
        rows,
        days,
        scope=ItemScope("mailing_id", ids, MAILINGS),
        missing=missing,
        account=account,
        log=log,
        requests=requests,
    )
    return results, report_kept(log, results, missing, "mailings")


#: Each interaction table, and the client's report of one mailing that fills it.
MAILING_REPORTS = {
    MAILING_RECIPIENTS: Report(
        SpotlerClient.mailing_recipient_batches,
        "Every contact each mailing was sent to. Source: `GET /mailing/{id}/recipients`.",
    ),
    MAILING_OPENS: Report(
        SpotlerClient.mailing_open_batches,
        "Every open of each mailing, with its time; opens keep arriving for days after the "
        "send, so the last send days are refreshed daily. Source: `GET /mailing/{id}/opens`.",
    ),
    MAILING_CLICKS: Report(
        SpotlerClient.mailing_click_batches,
        "Every click on a link of each mailing, with the link (`mailing_links`). Source: "
        "`GET /mailing/{id}/clicks`.",
    ),
    MAILING_BOUNCES: Report(
        SpotlerClient.mailing_bounce_batches,
        "Every hard and soft bounce of each mailing. Source: `GET /mailing/{id}/bounces`.",
    ),
}


def _mailing_items(client: SpotlerClient, window: dg.TimeWindow) -> list[Item]:
    """The mailings sent in ``window``, each with its send day and sentCount."""
    return [
        Item(m.encrypted_id, {"send_day": _send_day(m, window.start.tzinfo)}, m.sent_count)
        for m in mailings_in_window(client, window.start, window.end)
    ]


def _mailing_pages(
    client: SpotlerClient, table: Table, mailing_id: str, window: dg.TimeWindow
) -> Iterator[pa.RecordBatch]:
    return MAILING_REPORTS[table].batches(client, mailing_id)


def build_mailing_assets(settings: DeploymentSettings) -> list[dg.AssetsDefinition]:
    tz = settings.timezone
    send_days = daily_partitions(settings.partitions_start, tz)
    snapshot_days = daily_partitions(settings.partitions_start, tz)
    checks = mailing_checks()
    catalogue_checks = checks_for(checks, (MAILINGS, MAILING_LINKS))
    snapshot_checks = checks_for(checks, (MAILING_STATS_SNAPSHOTS,))

    @writing_step(
        "spotler_mailings",
        [
            table_spec(
                MAILINGS,
                group=GROUP,
                partitions_def=send_days,
                description=(
                    "One-off mailings (newsletters and SMS) by the day they were sent, with "
                    "who sent them to which target group, subject and sender. Sources: "
                    "`GET /mailing` (mailings sent in the range) and `GET /mailing/{id}` "
                    "(details of each)."
                ),
                skippable=True,
            ),
            table_spec(
                MAILING_LINKS,
                group=GROUP,
                partitions_def=send_days,
                deps=[MAILINGS],
                description=(
                    "The trackable links of each mailing (webshop, unsubscribe, social, ...): "
                    "what `mailing_clicks.link_id` refers to. Source: `GET /mailing/{id}`."
                ),
                skippable=True,
            ),
        ],
        catalogue_checks,
        pool=settings.pool,
        partitions_def=send_days,
    )
    def spotler_mailings(
        context: dg.AssetExecutionContext, spotler: SpotlerResource, warehouse: WarehouseResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        run = run_days(context)
        tables = selected_tables(context, (MAILINGS, MAILING_LINKS))
        with spotler.get_client(warehouse.contact_key()) as client:
            summaries = mailings_in_window(client, run.window.start, run.window.end)
            context.log.info(f"{len(summaries)} mailings sent in {run.text}")
            details = each_or_none(
                lambda m: client.get_mailing(m.encrypted_id),
                summaries,
                workers=spotler.max_concurrent_requests,
                log=context.log,
                what="Details",
                noun="mailings",
            )
            requests = client.request_count
        rows: dict[Table, list[dict[str, Any]]] = {MAILINGS: [], MAILING_LINKS: []}
        for summary, detail in zip(summaries, details, strict=True):
            if detail is not None:  # None: deleted since it was listed
                day = _send_day(summary, run.window.start.tzinfo)
                rows[MAILINGS].append(_mailing_row(detail, day))
                rows[MAILING_LINKS].extend(_link_rows(detail, day))
        results, kept = _write_for_mailings(
            warehouse,
            {t: rows[t] for t in tables},
            run.days,
            summaries,
            details,
            account=spotler.account(),
            log=context.log,
            requests=requests,
        )
        yield from materialize_results(
            results, tables, api_requests=requests, window=run.text, extra=kept
        )
        yield from inline_results(context, warehouse, catalogue_checks, run.days)

    @dg.asset(
        key=asset_key(MAILING_STATS_SNAPSHOTS),
        description=(
            "Spotler's 14 statistics of every mailing sent in the last "
            f"{settings.snapshot_lookback_days} days, as they stood when the snapshot was "
            "taken: one row per mailing per snapshot day. Spotler only reports statistics "
            "as they are *now*, so only today's partition can be materialised; the series "
            "of daily snapshots shows how opens and clicks mature after a send. "
            "Latest per mailing: view `spotler.mailing_stats_latest`. Source: "
            "`GET /mailing/{id}/statistics`.\n\n"
            f"Key: (mailing_id, snapshot_day). DuckDB table `spotler.mailing_stats_snapshots`."
        ),
        # Its own group: a snapshot can only be taken today, so a range backfill of the
        # `mailings` group (past send days) never reaches it and never fails by design.
        group_name="statistics",
        partitions_def=snapshot_days,
        deps=[asset_key(MAILINGS)],
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=settings.pool,
        kinds={"duckdb"},
        freshness_policy=DAILY_FRESHNESS,
        check_specs=[c.spec() for c in snapshot_checks],
        metadata={
            "dagster/column_schema": column_schema(MAILING_STATS_SNAPSHOTS),
            "dagster/table_name": MAILING_STATS_SNAPSHOTS.qualified_name,
            "primary_key": "mailing_id, snapshot_day",
        },
    )
    def mailing_stats_snapshots(
        context: dg.AssetExecutionContext,
        spotler: SpotlerResource,
        warehouse: WarehouseResource,
        clock: ClockResource,
    ) -> dg.MaterializeResult:
        now = clock.now(tz)
        today = now.date().isoformat()
        refused = [k for k in context.partition_keys if k != today]
        if refused:
            raise dg.Failure(
                description=(
                    f"Refusing snapshot partition(s) {', '.join(refused)}: Spotler only "
                    f"reports statistics as they are now ({now:%Y-%m-%d %H:%M %Z}), so a "
                    f"snapshot can only be stored under today's partition {today}. Storing "
                    "today's numbers under a past day would corrupt the maturity curve."
                ),
                allow_retries=False,
            )
        since = now - timedelta(days=settings.snapshot_lookback_days)
        with spotler.get_client(warehouse.contact_key()) as client:
            summaries = [m for m in client.list_mailings(since, now) if m.scheduled_start_date]
            context.log.info(
                f"Snapshotting statistics of {len(summaries):,} mailings sent since "
                f"{since:%Y-%m-%d}: one request each, {spotler.max_concurrent_requests} at once"
            )
            stats = statistics_of(client, summaries, spotler.max_concurrent_requests, context.log)
            requests = client.request_count
        rows = [
            _snapshot_row(summary, stat, now)
            for summary, stat in zip(summaries, stats, strict=True)
            if stat is not None
        ]
        days = written_window(now.date(), now.date() + timedelta(days=1))
        results, kept = _write_for_mailings(
            warehouse,
            {MAILING_STATS_SNAPSHOTS: rows},
            days,
            summaries,
            stats,
            account=spotler.account(),
            log=context.log,
            requests=requests,
        )
        return dg.MaterializeResult(
            metadata=write_metadata(
                results[0],
                api_requests=requests,
                window=today,
                extra={"snapshot_at": dg.MetadataValue.timestamp(now), **kept},
            ),
            check_results=list(inline_results(context, warehouse, snapshot_checks, days)),
        )

    interactions = interaction_assets(
        Interactions(
            name="spotler_mailing_interactions",
            group=GROUP,
            reports=MAILING_REPORTS,
            partitioned_by="Partitioned by the mailing's send day.",
            catalogue=MAILINGS,
            item_column="mailing_id",
            items="mailings",
            list_items=_mailing_items,
            pages=_mailing_pages,
            checks=checks_for(checks, MAILING_INTERACTION_TABLES),
            stated=StatedReport(MAILING_RECIPIENTS, "recipients"),
        ),
        send_days,
        settings.pool,
    )
    return [spotler_mailings, mailing_stats_snapshots, interactions]
