"""Assets of one-off mailings: the mailings and links, statistics snapshots, interactions.

A page of API data reaches its table like this: the asset asks the client for the send
day's mailings (endpoint 1), then streams each mailing's reports page by page
(:func:`~spotler_pipeline.defs.fetching.fetch_into`) into a local staging area, and finally
replaces the partition's rows in one DuckDB transaction (``WarehouseResource.replace``).
"""

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from typing import Any

import dagster as dg
import pyarrow as pa

from spotler_pipeline.client import (
    MailingDetails,
    MailingSummary,
    SpotlerClient,
    SpotlerNotFoundError,
)
from spotler_pipeline.defs.checks import checks_for, inline_results, written_window
from spotler_pipeline.defs.config import DeploymentSettings
from spotler_pipeline.defs.fetching import (
    FetchTask,
    ItemScope,
    Unchanged,
    complete_items,
    fetch_and_replace,
)
from spotler_pipeline.defs.mailing_checks import mailing_checks
from spotler_pipeline.defs.metadata import (
    DAILY_FRESHNESS,
    asset_key,
    column_schema,
    materialize_results,
    report_kept,
    table_spec,
    window_text,
    write_metadata,
)
from spotler_pipeline.defs.partitions import check_partition_range, daily_partitions
from spotler_pipeline.defs.resources import ClockResource, SpotlerResource, WarehouseResource
from spotler_pipeline.warehouse import Absent, Replacement, Scope, Table
from spotler_pipeline.warehouse.mailing_tables import (
    MAILING_BOUNCES,
    MAILING_CLICKS,
    MAILING_INTERACTION_TABLES,
    MAILING_LINKS,
    MAILING_OPENS,
    MAILING_RECIPIENTS,
    MAILING_STATS_SNAPSHOTS,
    MAILINGS,
    STATISTIC_COLUMNS,
)

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


def _details_or_none(client: SpotlerClient, mailing: MailingSummary) -> MailingDetails | None:
    """The mailing's details, or ``None`` when Spotler deleted it after listing it (404)."""
    try:
        return client.get_mailing(mailing.encrypted_id)
    except SpotlerNotFoundError:
        return None


def _statistics_or_none(client: SpotlerClient, mailing: MailingSummary) -> Any:
    """The mailing's statistics now, or ``None`` when Spotler deleted it (404)."""
    try:
        return client.get_mailing_statistics(mailing.encrypted_id)
    except SpotlerNotFoundError:
        return None


def statistics_of(
    client: SpotlerClient,
    mailings: Sequence[MailingSummary],
    workers: int,
    log: Any,
    progress_interval: float = 10.0,
) -> list[Any]:
    """Each mailing's statistics now (``None`` for one deleted since it was listed), one
    request per mailing and ``workers`` at once, saying how far it got every
    ``progress_interval`` seconds.

    Time is bounded by the client's request cap: ``len(mailings) / workers`` round trips (or
    the optional requests-per-second cap), each bounded by its timeout and retries.
    """
    started = time.monotonic()
    results: list[Any] = [None] * len(mailings)
    with ThreadPoolExecutor(workers, thread_name_prefix="spotler-stats") as pool:
        futures = {pool.submit(_statistics_or_none, client, m): i for i, m in enumerate(mailings)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=progress_interval, return_when=FIRST_EXCEPTION)
            for future in done:
                results[futures[future]] = future.result()  # re-raises the first failure
            if pending:
                log.info(f"Statistics of {len(futures) - len(pending):,} of {len(futures):,}")
    if mailings:
        log.info(f"Statistics of {len(mailings):,} mailings in {time.monotonic() - started:.1f}s")
    return results


def _mailing_row(details: MailingDetails, send_day: Any) -> dict[str, Any]:
    msg = details.message
    return {
        "send_day": send_day,
        "encrypted_id": details.encrypted_id,
        "name": details.name,
        "type": details.type,
        "scheduled_start_date": details.scheduled_start_date,
        "archive_link": details.archive_link,
        "sent_count": details.sent_count,
        "sender": details.sender,
        "target_group": details.target_group,
        "message_name": msg.name if msg else None,
        "message_author": msg.author if msg else None,
        "subject": msg.subject if msg else None,
        "from_name": msg.from_name if msg else None,
        "from_email": msg.from_email if msg else None,
        "link_count": len(details.links),
        "present": True,
    }


def _link_rows(details: MailingDetails, send_day: Any) -> list[dict[str, Any]]:
    return [
        {
            "send_day": send_day,
            "mailing_id": details.encrypted_id,
            "link_id": None if link.id is None else str(link.id),
            "name": link.name,
            "url": link.url,
            "code": link.code,
            "type": link.type,
        }
        for link in details.links
    ]


def _rows_table(table: Table, rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=table.arrow_schema)


def build_mailing_assets(settings: DeploymentSettings) -> list[dg.AssetsDefinition]:
    tz = settings.timezone
    send_days = daily_partitions(settings.partitions_start, tz)
    snapshot_days = daily_partitions(settings.partitions_start, tz)
    backfill = dg.BackfillPolicy.multi_run(max_partitions_per_run=31)
    checks = mailing_checks()
    catalogue_checks = checks_for(checks, (MAILINGS, MAILING_LINKS))
    snapshot_checks = checks_for(checks, (MAILING_STATS_SNAPSHOTS,))
    interaction_checks = checks_for(checks, MAILING_INTERACTION_TABLES)

    @dg.multi_asset(
        name="spotler_mailings",
        specs=[
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
        partitions_def=send_days,
        backfill_policy=backfill,
        can_subset=True,
        pool=settings.pool,
        check_specs=[c.spec() for c in catalogue_checks],
    )
    def spotler_mailings(
        context: dg.AssetExecutionContext, spotler: SpotlerResource, warehouse: WarehouseResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        check_partition_range(context)
        window = context.partition_time_window
        zone = window.start.tzinfo
        account = spotler.account()
        with spotler.get_client() as client:
            summaries = mailings_in_window(client, window.start, window.end)
            context.log.info(
                f"{len(summaries)} mailings sent in {window_text(context.partition_keys)}"
            )
            with ThreadPoolExecutor(spotler.max_concurrent_requests) as pool:
                details = list(pool.map(lambda m: _details_or_none(client, m), summaries))
            requests = client.request_count
        mailing_rows, link_rows, fetched, missing = [], [], [], []
        for summary, detail in zip(summaries, details, strict=True):
            if detail is None:
                missing.append(summary.encrypted_id)
                continue
            day = _send_day(summary, zone)
            mailing_rows.append(_mailing_row(detail, day))
            link_rows.extend(_link_rows(detail, day))
            fetched.append(summary.encrypted_id)
        rows = {MAILINGS: mailing_rows, MAILING_LINKS: link_rows}
        scopes = {
            MAILINGS: Scope("encrypted_id", fetched),
            MAILING_LINKS: Scope("mailing_id", fetched),
        }
        tables = [t for t in rows if asset_key(t) in context.selected_asset_keys]
        with warehouse.staging() as stage:
            for table in tables:
                stage.append(table, _rows_table(table, rows[table]))
            results = warehouse.replace(
                [Replacement(t, stage.files(t), scopes[t]) for t in tables],
                window.start.date(),
                window.end.date(),
                absent=[Absent(MAILINGS, "encrypted_id", missing)] if missing else [],
                account=account,
            )
        kept = report_kept(context.log, results, missing, "mailings")
        yield from materialize_results(
            results,
            tables,
            api_requests=requests,
            window=window_text(context.partition_keys),
            extra=kept,
        )
        yield from inline_results(
            context, warehouse, catalogue_checks, written_window(window.start, window.end)
        )

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
                )
            )
        since = now - timedelta(days=settings.snapshot_lookback_days)
        with spotler.get_client() as client:
            summaries = [m for m in client.list_mailings(since, now) if m.scheduled_start_date]
            context.log.info(
                f"Snapshotting statistics of {len(summaries):,} mailings sent since "
                f"{since:%Y-%m-%d}: one request each, {spotler.max_concurrent_requests} at once"
            )
            stats = statistics_of(client, summaries, spotler.max_concurrent_requests, context.log)
            requests = client.request_count
        rows, missing = [], []
        for summary, stat in zip(summaries, stats, strict=True):
            if stat is None:
                missing.append(summary.encrypted_id)
                continue
            send_day = _send_day(summary, now.tzinfo)
            row: dict[str, Any] = {
                "snapshot_day": now.date(),
                "snapshot_at": now,
                "mailing_id": summary.encrypted_id,
                "send_day": send_day,
                "days_since_send": (now.date() - send_day).days,
            }
            for col in STATISTIC_COLUMNS:
                row[col.name] = getattr(stat, col.name)
            rows.append(row)
        with warehouse.staging() as stage:
            stage.append(MAILING_STATS_SNAPSHOTS, _rows_table(MAILING_STATS_SNAPSHOTS, rows))
            fetched = [m.encrypted_id for m in summaries if m.encrypted_id not in missing]
            results = warehouse.replace(
                [
                    Replacement(
                        MAILING_STATS_SNAPSHOTS,
                        stage.files(MAILING_STATS_SNAPSHOTS),
                        Scope("mailing_id", fetched),
                    )
                ],
                now.date(),
                now.date() + timedelta(days=1),
                absent=[Absent(MAILINGS, "encrypted_id", missing)] if missing else [],
                account=spotler.account(),
            )
        kept = report_kept(context.log, results, missing, "mailings")
        return dg.MaterializeResult(
            metadata=write_metadata(
                results[0],
                api_requests=requests,
                window=today,
                extra={"snapshot_at": dg.MetadataValue.timestamp(now), **kept},
            ),
            check_results=list(
                inline_results(
                    context,
                    warehouse,
                    snapshot_checks,
                    written_window(now.date(), now.date() + timedelta(days=1)),
                )
            ),
        )

    interaction_specs = {
        MAILING_RECIPIENTS: (
            "Every contact each mailing was sent to. Source: `GET /mailing/{id}/recipients`."
        ),
        MAILING_OPENS: (
            "Every open of each mailing, with its time; opens keep arriving for days after "
            "the send, so the last send days are refreshed daily. Source: "
            "`GET /mailing/{id}/opens`."
        ),
        MAILING_CLICKS: (
            "Every click on a link of each mailing, with the link (`mailing_links`). "
            "Source: `GET /mailing/{id}/clicks`."
        ),
        MAILING_BOUNCES: (
            "Every hard and soft bounce of each mailing. Source: `GET /mailing/{id}/bounces`."
        ),
    }

    @dg.multi_asset(
        name="spotler_mailing_interactions",
        specs=[
            table_spec(
                table,
                group=GROUP,
                partitions_def=send_days,
                deps=[MAILINGS],
                description=description + " Partitioned by the mailing's send day.",
                skippable=True,
            )
            for table, description in interaction_specs.items()
        ],
        partitions_def=send_days,
        backfill_policy=backfill,
        can_subset=True,
        pool=settings.pool,
        check_specs=[c.spec() for c in interaction_checks],
    )
    def spotler_mailing_interactions(
        context: dg.AssetExecutionContext, spotler: SpotlerResource, warehouse: WarehouseResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        check_partition_range(context)
        window = context.partition_time_window
        zone = window.start.tzinfo
        days = written_window(window.start, window.end)
        tables = [t for t in interaction_specs if asset_key(t) in context.selected_asset_keys]
        with spotler.get_client() as client:
            mailings = mailings_in_window(client, window.start, window.end)
            # A sent mailing's recipients do not change: those already stored in full (as
            # many as its sentCount) are kept as they are instead of being read again.
            complete = (
                complete_items(
                    warehouse,
                    MAILING_RECIPIENTS,
                    "mailing_id",
                    {m.encrypted_id: m.sent_count for m in mailings if m.sent_count},
                    days,
                )
                if MAILING_RECIPIENTS in tables
                else {}
            )
            sources: dict[Table, Callable[[str], Iterator[pa.RecordBatch]]] = {
                MAILING_RECIPIENTS: client.mailing_recipient_batches,
                MAILING_OPENS: client.mailing_open_batches,
                MAILING_CLICKS: client.mailing_click_batches,
                MAILING_BOUNCES: client.mailing_bounce_batches,
            }
            context.log.info(
                f"{len(mailings)} mailings sent in {window_text(context.partition_keys)} "
                f"({sum(m.sent_count or 0 for m in mailings):,} recipients); fetching "
                + ", ".join(t.name for t in tables)
                + (
                    f"; the recipients of {len(complete)} mailings are stored in full "
                    f"({sum(complete.values()):,} rows, as many as their sentCount) and kept "
                    "without reading them again"
                    if complete
                    else ""
                )
            )
            tasks = [
                FetchTask(
                    table=table,
                    pages=(lambda src=sources[table], mid=m.encrypted_id: src(mid)),
                    constants={"send_day": _send_day(m, zone), "mailing_id": m.encrypted_id},
                    expected_rows=m.sent_count if table is MAILING_RECIPIENTS else None,
                    item=m.encrypted_id,
                )
                for m in mailings
                for table in tables
                if not (table is MAILING_RECIPIENTS and m.encrypted_id in complete)
            ]
            written = fetch_and_replace(
                warehouse,
                tasks,
                tables,
                days.start,
                days.end,
                scope=ItemScope(
                    "mailing_id",
                    [m.encrypted_id for m in mailings],
                    MAILINGS,
                    unchanged=[Unchanged(MAILING_RECIPIENTS, complete)] if complete else [],
                ),
                account=spotler.account(),
                max_workers=spotler.max_concurrent_requests,
                log=context.log,
                requests=lambda: client.request_count,
            )
            requests = client.request_count
        kept = report_kept(context.log, written.results, written.missing, "mailings")
        yield from materialize_results(
            written.results,
            tables,
            api_requests=requests,
            window=window_text(context.partition_keys),
            extra={
                "mailings": dg.MetadataValue.int(len(mailings)),
                "mailings_recipients_complete_kept": dg.MetadataValue.int(len(complete)),
                "fetch_seconds": dg.MetadataValue.float(round(written.fetch_seconds, 2)),
                "write_seconds": dg.MetadataValue.float(round(written.write_seconds, 2)),
                **kept,
            },
        )
        # Recipients kept as complete were not rewritten: their checks look at the rest only.
        rewritten = {
            MAILING_RECIPIENTS.name: days.only(
                "mailing_id", [m.encrypted_id for m in mailings if m.encrypted_id not in complete]
            )
        }
        yield from inline_results(
            context, warehouse, interaction_checks, days, rewritten if complete else None
        )

    return [spotler_mailings, mailing_stats_snapshots, spotler_mailing_interactions]
