"""Assets of the contact card: each active contact's history as Spotler reports it.

Spotler's per-contact endpoints (10-12) give a contact's whole history in one place, but
cost three requests per contact, so they are read for a bounded set: the contacts active on
the partition's day (found in the interaction and form tables already in the warehouse), or
the contacts named in the run config. The same card for *every* contact comes free from the
interaction tables (views ``contact_*_card``); the histories here are the reference those
views are reconciled against (``contact_checks``).
"""

from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from typing import Any

import dagster as dg
import pyarrow as pa
from pydantic import Field

from spotler_pipeline.client import (
    CampaignMailingHistory,
    FormHistory,
    MailingHistory,
    SpotlerClient,
    SpotlerNotFoundError,
)
from spotler_pipeline.defs.checks import inline_results, written_window
from spotler_pipeline.defs.config import DeploymentSettings
from spotler_pipeline.defs.contact_checks import contact_checks
from spotler_pipeline.defs.fetching import FetchTask, fetch_into
from spotler_pipeline.defs.metadata import (
    asset_key,
    materialize_results,
    table_spec,
    window_text,
)
from spotler_pipeline.defs.partitions import check_partition_range, daily_partitions
from spotler_pipeline.defs.resources import ClockResource, SpotlerResource, WarehouseResource
from spotler_pipeline.defs.schedules import daily_after_upstream
from spotler_pipeline.warehouse import Replacement, Scope, Table
from spotler_pipeline.warehouse.campaign_tables import CAMPAIGN_INTERACTION_TABLES
from spotler_pipeline.warehouse.contact_tables import (
    CONTACT_CAMPAIGN_MAILING_HISTORY,
    CONTACT_FORM_HISTORY,
    CONTACT_MAILING_HISTORY,
)
from spotler_pipeline.warehouse.form_tables import FORM_ANSWERS
from spotler_pipeline.warehouse.mailing_tables import MAILING_INTERACTION_TABLES
from spotler_pipeline.warehouse.model import SCHEMA

GROUP = "contacts"
ROWS_PER_BATCH = 1000


class ContactHistoryConfig(dg.Config):
    """Which contacts' histories to read."""

    contact_ids: list[str] = Field(
        default_factory=list,
        description=(
            "On demand: refresh exactly these contacts (external ids, e.g. e-mail "
            "addresses) under the run's single partition day, leaving the other contacts "
            "stored for that day alone. Empty: the contacts active on each partition day."
        ),
    )
    max_contacts_per_day: int = Field(
        default=5000,
        description=(
            "Upper bound of contacts read per activity day (three requests each); beyond it "
            "the first contacts by id are read and the rest are reported as skipped."
        ),
    )


# -- which contacts were active ------------------------------------------------------------

#: An answer that is an e-mail address (a sign-up form's address field) names the contact.
EMAIL_PATTERN = r"[^@\s]+@[^@\s]+\.[^@\s]+"


def active_contacts(conn: Any, day: date, start: datetime, end: datetime) -> dict[str, set[str]]:
    """External ids of the contacts with an interaction or form submission on ``day``
    (``[start, end)``), per source: ``interactions`` and ``form_answers``."""
    mailing = [
        f"SELECT r.contact_external_id FROM {SCHEMA}.mailing_recipients r WHERE r.send_day = $day"
    ]
    for table, column in (
        ("mailing_opens", "open_date"),
        ("mailing_clicks", "click_date"),
        ("mailing_bounces", "bounce_date"),
    ):
        mailing.append(
            f"SELECT contact_external_id FROM {SCHEMA}.{table} "
            f"WHERE {column} >= $start AND {column} < $end"
        )
    campaign = [
        f"SELECT contact_external_id FROM {t.qualified_name} WHERE event_day = $day"
        for t in CAMPAIGN_INTERACTION_TABLES
    ]
    params = {"day": day, "start": start, "end": end}
    interactions = conn.execute(
        "SELECT DISTINCT contact_external_id FROM ("
        + " UNION ALL ".join(mailing + campaign)
        + ") WHERE contact_external_id IS NOT NULL",
        params,
    ).fetchall()
    answers = conn.execute(
        f"SELECT DISTINCT a.answer_text FROM {FORM_ANSWERS.qualified_name} a "
        f"JOIN {SCHEMA}.form_results r USING (form_id, form_result_id) "
        "WHERE a.submit_day = $day AND a.answer_type = 'text' "
        "AND r.test_result IS DISTINCT FROM true AND regexp_full_match(a.answer_text, $pattern)",
        {"day": day, "pattern": EMAIL_PATTERN},
    ).fetchall()
    return {
        "interactions": {r[0] for r in interactions},
        "form_answers": {r[0] for r in answers},
    }


# -- history records as rows -----------------------------------------------------------------


def _mailing_row(h: MailingHistory, day_of: Callable[[datetime | None], date | None]) -> dict:
    m = h.mailing
    return {
        "mailing_id": m.encrypted_id if m else None,
        "mailing_name": m.name if m else None,
        "mailing_type": m.type if m else None,
        "sent_date": h.sent_date,
        "sent_day": day_of(h.sent_date),
        "opened": h.opened,
        "clicked": h.clicked,
        "bounce": h.bounce,
    }


def _campaign_row(
    h: CampaignMailingHistory, day_of: Callable[[datetime | None], date | None]
) -> dict:
    m = h.campaign_mailing
    return {
        "campaign_mailing_id": m.encrypted_id if m else None,
        "campaign_mailing_name": m.name if m else None,
        "campaign_mailing_type": m.type if m else None,
        "campaign_subscription_id": h.campaign_subscription_id,
        "sent_date": h.sent_date,
        "sent_day": day_of(h.sent_date),
        "opened": h.opened,
        "clicked": h.clicked,
        "bounce": h.bounce,
    }


def _form_row(h: FormHistory, day_of: Callable[[datetime | None], date | None]) -> dict:
    f = h.form
    return {
        "form_id": f.id if f else None,
        "form_name": f.name if f else None,
        "form_sub_type": f.form_sub_type if f else None,
        "form_state": f.form_state if f else None,
        "form_result_id": h.form_result_id,
        "submit_date": h.submit_date,
        "submit_day": day_of(h.submit_date),
        "completed": h.completed,
    }


class _NotFound:
    """Contacts Spotler no longer knows (deleted since their activity), counted per run."""

    def __init__(self) -> None:
        self.ids: set[str] = set()


def _history_pages(
    records: Callable[[], Iterable[Any]],
    to_row: Callable[[Any], dict],
    table: Table,
    days: list[date],
    contact: str,
    not_found: _NotFound,
) -> Iterator[pa.RecordBatch]:
    """One contact's history as batches, repeated under each activity day it belongs to."""
    rows: list[dict] = []
    try:
        for record in records():
            rows.append(to_row(record))
            if len(rows) >= ROWS_PER_BATCH:
                yield from _for_days(rows, table, days, contact)
                rows = []
    except SpotlerNotFoundError:
        not_found.ids.add(contact)
        return
    if rows:
        yield from _for_days(rows, table, days, contact)


def _for_days(
    rows: list[dict], table: Table, days: list[date], contact: str
) -> Iterator[pa.RecordBatch]:
    for day in days:
        batch = [{**r, "activity_day": day, "contact_external_id": contact} for r in rows]
        yield pa.RecordBatch.from_pylist(batch, schema=table.arrow_schema)


def build_contact_assets(settings: DeploymentSettings) -> list[dg.AssetsDefinition]:
    tz = settings.timezone
    activity_days = daily_partitions(settings.partitions_start, tz)
    checks = contact_checks()
    upstream = (*MAILING_INTERACTION_TABLES, *CAMPAIGN_INTERACTION_TABLES, FORM_ANSWERS)

    specs = {
        CONTACT_MAILING_HISTORY: (
            "For each contact active that day: every one-off mailing they received and "
            "whether they opened, clicked or bounced it, as Spotler's contact history reports "
            "it. Source: `GET /contact/{id}/mailings`."
        ),
        CONTACT_CAMPAIGN_MAILING_HISTORY: (
            "For each contact active that day: every campaign message they received, per "
            "pass through the campaign (subscription), opened / clicked / bounced. "
            "Source: `GET /contact/{id}/campaign-mailings`."
        ),
        CONTACT_FORM_HISTORY: (
            "For each contact active that day: every form they submitted, the only link "
            "between a contact and their form answers. Source: `GET /contact/{id}/forms`."
        ),
    }
    common = (
        " Partitioned by activity day: the contacts with any mailing or campaign "
        "interaction, or whose e-mail address was given in a form, that day (a contact "
        "active on several days has a history snapshot per day; `*_latest` views keep the "
        "newest). Run config `contact_ids` refreshes named contacts on demand."
    )

    @dg.multi_asset(
        name="spotler_contact_histories",
        specs=[
            table_spec(
                table,
                group=GROUP,
                partitions_def=activity_days,
                deps=list(upstream),
                description=description + common,
                skippable=True,
                # Yesterday's and today's activity, only once every interaction and form
                # table it reads has been refreshed that morning (never from stale rows).
                automation_condition=daily_after_upstream(tz, days=2),
            )
            for table, description in specs.items()
        ],
        partitions_def=activity_days,
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=7),
        can_subset=True,
        pool=settings.pool,
        check_specs=[c.spec() for c in checks],
    )
    def spotler_contact_histories(
        context: dg.AssetExecutionContext,
        config: ContactHistoryConfig,
        spotler: SpotlerResource,
        warehouse: WarehouseResource,
        clock: ClockResource,
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        check_partition_range(context)
        window = context.partition_time_window
        keys = context.partition_keys
        text = window_text(keys)
        tables = [t for t in specs if asset_key(t) in context.selected_asset_keys]
        fetched_at = clock.now(tz)
        zone = window.start.tzinfo

        def day_of(moment: datetime | None) -> date | None:
            return None if moment is None else moment.astimezone(zone).date()

        days_of: dict[str, list[date]] = {}
        skipped = 0
        if config.contact_ids:
            if len(keys) != 1:
                raise dg.Failure(
                    description=(
                        f"contact_ids refreshes named contacts under one activity day; this "
                        f"run spans {text}. Launch it for a single partition (e.g. today)."
                    )
                )
            day = window.start.date()
            days_of = {c: [day] for c in dict.fromkeys(config.contact_ids)}
            context.log.info(f"On demand: reading the histories of {len(days_of)} named contacts")
        else:
            with warehouse.read() as conn:
                for key in keys:
                    w = activity_days.time_window_for_partition_key(key)
                    found = active_contacts(conn, w.start.date(), w.start, w.end)
                    active = sorted(found["interactions"] | found["form_answers"])
                    chosen = active[: config.max_contacts_per_day]
                    skipped += len(active) - len(chosen)
                    context.log.info(
                        f"{key}: {len(active):,} active contacts "
                        f"({len(found['interactions']):,} with interactions, "
                        f"{len(found['form_answers'] - found['interactions']):,} more named "
                        f"in form answers); reading {len(chosen):,}"
                        + (
                            f", skipping {len(active) - len(chosen):,} over the bound "
                            f"max_contacts_per_day={config.max_contacts_per_day}"
                            if len(chosen) < len(active)
                            else ""
                        )
                    )
                    for contact in chosen:
                        days_of.setdefault(contact, []).append(w.start.date())
        if skipped:
            context.log.warning(f"{skipped:,} active contacts over the bound were not refreshed")

        not_found = _NotFound()
        with spotler.get_client() as client:
            sources: dict[Table, tuple[Callable[[SpotlerClient, str], Iterable[Any]], Any]] = {
                CONTACT_MAILING_HISTORY: (
                    lambda c, x: c.iter_contact_mailing_history(x),
                    _mailing_row,
                ),
                CONTACT_CAMPAIGN_MAILING_HISTORY: (
                    lambda c, x: c.iter_contact_campaign_mailing_history(x),
                    _campaign_row,
                ),
                CONTACT_FORM_HISTORY: (lambda c, x: c.iter_contact_form_history(x), _form_row),
            }
            tasks = [
                FetchTask(
                    table=table,
                    pages=(
                        lambda t=table, x=contact, d=days: _history_pages(
                            lambda: sources[t][0](client, x),
                            lambda rec, t=t: sources[t][1](rec, day_of),
                            t,
                            d,
                            x,
                            not_found,
                        )
                    ),
                    constants={"fetched_at": fetched_at},
                )
                for contact, days in days_of.items()
                for table in tables
            ]
            context.log.info(
                f"Reading {', '.join(t.name for t in tables)} of {len(days_of):,} contacts "
                f"for {text} ({len(tasks):,} paged reports)"
            )
            with warehouse.staging() as stage:
                fetch_into(
                    stage, tasks, max_workers=spotler.max_concurrent_requests, log=context.log
                )
                requests = client.request_count
                # Only the contacts read replace their rows: a contact Spotler no longer
                # knows (404), or one over the bound this time, keeps what is stored.
                read = [c for c in days_of if c not in not_found.ids]
                scope = Scope("contact_external_id", read)
                results = warehouse.replace(
                    [Replacement(t, stage.files(t), scope) for t in tables],
                    window.start.date(),
                    window.end.date(),
                    account=spotler.account(),
                )
        if not_found.ids:
            context.log.warning(
                f"{len(not_found.ids)} contacts are unknown to Spotler (CONTACT_NOT_FOUND), "
                "e.g. deleted since, or an address given in a form that is no contact"
            )
        yield from materialize_results(
            results,
            tables,
            api_requests=requests,
            window=text,
            extra={
                "contacts": dg.MetadataValue.int(len(days_of)),
                "contacts_skipped_over_bound": dg.MetadataValue.int(skipped),
                "contacts_not_found": dg.MetadataValue.int(len(not_found.ids)),
                "on_demand": dg.MetadataValue.bool(bool(config.contact_ids)),
            },
        )
        yield from inline_results(
            context, warehouse, checks, written_window(window.start, window.end)
        )

    return [spotler_contact_histories]


def build_contact_definitions(settings: DeploymentSettings) -> dg.Definitions:
    """Contact-card assets, checks, jobs and schedules, to merge into the code location."""
    from spotler_pipeline.defs.checks import nightly_checks

    (histories,) = build_contact_assets(settings)
    job = dg.define_asset_job(
        "spotler_contact_histories_refresh",
        selection=dg.AssetSelection.assets(histories),
        description=(
            "The API's history of each contact active on a range of days (or of the contacts "
            "named in the run config)."
        ),
    )
    return dg.Definitions(
        assets=[histories],
        asset_checks=[nightly_checks("spotler_contact_histories_all_days", contact_checks())],
        # No schedule: its automation condition runs it after the refreshes it reads.
        jobs=[job],
    )
