"""Assets of the contact card: each active contact's history as Spotler reports it.

Spotler's per-contact endpoints (10-12) give a contact's whole history in one place, but
cost three requests per contact, so they are read for a bounded set: the contacts active on
the partition's day (found in the interaction and form tables already in the warehouse), or
the contacts listed in a file the run config names (the ids themselves never sit in run
config, which the UI shows and every run's record keeps). The same card for *every* contact
comes free from the interaction tables (views ``contact_*_card``); the histories here are the
reference those views are reconciled against (``contact_checks``).
"""

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
from pydantic import Field

from spotler_pipeline.client import SpotlerClient
from spotler_pipeline.defs.checks import inline_results
from spotler_pipeline.defs.config import DeploymentSettings
from spotler_pipeline.defs.contact_checks import contact_checks
from spotler_pipeline.defs.fetching import FetchTask, fetch_and_write
from spotler_pipeline.defs.metadata import (
    materialize_results,
    selected_tables,
    table_spec,
    writing_step,
)
from spotler_pipeline.defs.partitions import RunDays, daily_partitions, run_days
from spotler_pipeline.defs.resources import ClockResource, SpotlerResource, WarehouseResource
from spotler_pipeline.defs.schedules import automated_group, daily_after_upstream
from spotler_pipeline.defs.writing import ItemScope
from spotler_pipeline.records import row_values
from spotler_pipeline.warehouse import Table
from spotler_pipeline.warehouse.campaign_tables import CAMPAIGN_INTERACTION_TABLES
from spotler_pipeline.warehouse.contact_tables import (
    CONTACT_CAMPAIGN_MAILING_HISTORY,
    CONTACT_FORM_HISTORY,
    CONTACT_MAILING_HISTORY,
)
from spotler_pipeline.warehouse.form_tables import FORM_ANSWERS
from spotler_pipeline.warehouse.lookups import active_contacts
from spotler_pipeline.warehouse.mailing_tables import MAILING_INTERACTION_TABLES

GROUP = "contacts"
ROWS_PER_BATCH = 1000


class ContactHistoryConfig(dg.Config):
    """Which contacts' histories to read."""

    contacts_file: str | None = Field(
        default=None,
        description=(
            "On demand: a text file (as the run sees it) listing the contacts to refresh, one "
            "external id (e.g. an e-mail address) per line, read under the run's single "
            "partition day; the other contacts stored for that day are left alone. The ids "
            "stay in the file, out of the run config. Unset: the contacts active on each "
            "partition day."
        ),
    )
    max_contacts_per_day: int = Field(
        default=5000,
        description=(
            "Upper bound of contacts read per activity day (three requests each); beyond it "
            "the first contacts by id are read and the rest are reported as skipped."
        ),
    )


# -- which contacts to read, under which days ------------------------------------------------


@dataclass(frozen=True)
class Contacts:
    """The contacts a run reads, each with the activity days its history is stored under,
    and how many active contacts were left over the bound."""

    days_of: dict[str, list[date]]
    skipped: int = 0


def read_contacts_file(path: str) -> list[str]:
    """The external ids listed in ``path``, one a line (blank lines skipped), in order and
    each once."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise dg.Failure(
            description=f"contacts_file {path}: cannot read it ({type(exc).__name__})"
        ) from None
    ids = list(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))
    if not ids:
        raise dg.Failure(description=f"contacts_file {path} lists no contact")
    return ids


def named_contacts(path: str, run: RunDays) -> Contacts:
    """On demand: the contacts listed in the file ``path``, under the run's one day."""
    if len(run.each_day) != 1:
        raise dg.Failure(
            description=(
                f"contacts_file refreshes the contacts it lists under one activity day; this "
                f"run spans {run.text}. Launch it for a single partition (e.g. today)."
            )
        )
    return Contacts({c: [run.days.start] for c in read_contacts_file(path)})


def contacts_active_on(
    warehouse: WarehouseResource,
    days: Sequence[dg.TimeWindow],
    bound: int,
    log: Any,
) -> Contacts:
    """The contacts active on each of ``days`` (at most ``bound`` a day, the first by id),
    read from the interaction and form tables already stored."""
    days_of: dict[str, list[date]] = {}
    skipped = 0
    with warehouse.read() as conn:
        for day in days:
            found = active_contacts(conn, day.start.date(), day.start, day.end)
            active = sorted(found["interactions"] | found["form_answers"])
            chosen = active[:bound]
            skipped += len(active) - len(chosen)
            log.info(_active_text(day.start.date(), found, active, chosen, bound))
            for contact in chosen:
                days_of.setdefault(contact, []).append(day.start.date())
    if skipped:
        log.warning(f"{skipped:,} active contacts over the bound were not refreshed")
    return Contacts(days_of, skipped)


def _active_text(
    day: date, found: Mapping[str, set[str]], active: list[str], chosen: list[str], bound: int
) -> str:
    text = (
        f"{day}: {len(active):,} active contacts "
        f"({len(found['interactions']):,} with interactions, "
        f"{len(found['form_answers'] - found['interactions']):,} more named in form answers); "
        f"reading {len(chosen):,}"
    )
    if len(chosen) < len(active):
        text += (
            f", skipping {len(active) - len(chosen):,} over the bound max_contacts_per_day={bound}"
        )
    return text


def contacts_to_read(
    config: ContactHistoryConfig, run: RunDays, warehouse: WarehouseResource, log: Any
) -> Contacts:
    """The contacts listed in the run config's ``contacts_file``, or else those active on
    the run's days."""
    if config.contacts_file:
        contacts = named_contacts(config.contacts_file, run)
        log.info(
            f"On demand: reading the histories of the {len(contacts.days_of)} contacts listed "
            f"in {config.contacts_file}"
        )
        return contacts
    return contacts_active_on(warehouse, run.each_day, config.max_contacts_per_day, log)


# -- a contact's history as rows -------------------------------------------------------------


@dataclass(frozen=True)
class History:
    """One of Spotler's per-contact histories (endpoints 10-12) and the table it fills.

    Each record (:mod:`spotler_pipeline.records`) is about one item (a mailing, campaign
    message or form) and fills the table's columns by its declared fields
    (:func:`~spotler_pipeline.records.row_values`); ``day`` (column, moment) is the day of
    that moment in the account's time zone.
    """

    table: Table
    description: str
    records: Callable[[SpotlerClient, str], Iterable[Any]]
    day: tuple[str, str]

    def row(self, record: Any, zone: tzinfo | None) -> dict[str, Any]:
        column, moment_of = self.day
        moment = getattr(record, moment_of)
        return {
            **row_values(record),
            column: None if moment is None else moment.astimezone(zone).date(),
        }


HISTORIES = (
    History(
        CONTACT_MAILING_HISTORY,
        "For each contact active that day: every one-off mailing they received and whether "
        "they opened, clicked or bounced it, as Spotler's contact history reports it. "
        "Source: `GET /contact/{id}/mailings`.",
        SpotlerClient.iter_contact_mailing_history,
        ("sent_day", "sent_date"),
    ),
    History(
        CONTACT_CAMPAIGN_MAILING_HISTORY,
        "For each contact active that day: every campaign message they received, per pass "
        "through the campaign (subscription), opened / clicked / bounced. Source: "
        "`GET /contact/{id}/campaign-mailings`.",
        SpotlerClient.iter_contact_campaign_mailing_history,
        ("sent_day", "sent_date"),
    ),
    History(
        CONTACT_FORM_HISTORY,
        "For each contact active that day: every form they submitted, the only link between "
        "a contact and their form answers. Source: `GET /contact/{id}/forms`.",
        SpotlerClient.iter_contact_form_history,
        ("submit_day", "submit_date"),
    ),
)


def history_pages(
    client: SpotlerClient, history: History, contact: str, days: list[date], zone: tzinfo | None
) -> Iterator[pa.RecordBatch]:
    """One contact's history as batches of ``ROWS_PER_BATCH`` rows, repeated under each
    activity day it is stored under."""
    rows: list[dict[str, Any]] = []
    for record in history.records(client, contact):
        rows.append(history.row(record, zone))
        if len(rows) >= ROWS_PER_BATCH:
            yield from _under_days(rows, history.table, days, contact)
            rows = []
    if rows:
        yield from _under_days(rows, history.table, days, contact)


def _under_days(
    rows: list[dict[str, Any]], table: Table, days: list[date], contact: str
) -> Iterator[pa.RecordBatch]:
    for day in days:
        batch = [{**r, "activity_day": day, "contact_external_id": contact} for r in rows]
        yield from pa.Table.from_pylist(batch, schema=table.arrow_schema).to_batches()


def history_tasks(
    client: SpotlerClient,
    histories: Sequence[History],
    contacts: Contacts,
    zone: tzinfo | None,
    fetched_at: datetime,
) -> list[FetchTask]:
    """One paged report per contact and history; a contact unknown to Spotler (404) keeps
    what is stored for it."""
    return [
        FetchTask(
            table=h.table,
            pages=(lambda h=h, c=contact, d=days: history_pages(client, h, c, d, zone)),
            constants={"fetched_at": fetched_at},
            item=contact,
            listing=f"{h.table.name} of one contact",
        )
        for contact, days in contacts.days_of.items()
        for h in histories
    ]


def build_contact_assets(settings: DeploymentSettings) -> list[dg.AssetsDefinition]:
    tz = settings.timezone
    activity_days = daily_partitions(settings.partitions_start, tz)
    checks = contact_checks()
    upstream = (*MAILING_INTERACTION_TABLES, *CAMPAIGN_INTERACTION_TABLES, FORM_ANSWERS)
    common = (
        " Partitioned by activity day: the contacts with any mailing or campaign "
        "interaction, or whose e-mail address was given in a form, that day (a contact "
        "active on several days has a history snapshot per day; `*_latest` views keep the "
        "newest). Run config `contacts_file` refreshes the contacts a file lists on demand."
    )

    @writing_step(
        "spotler_contact_histories",
        [
            table_spec(
                history.table,
                group=GROUP,
                partitions_def=activity_days,
                deps=list(upstream),
                description=history.description + common,
                skippable=True,
                # Yesterday's and today's activity, only once every interaction and form
                # table it reads has been refreshed that morning (never from stale rows).
                automation_condition=daily_after_upstream(tz, days=2),
            )
            for history in HISTORIES
        ],
        checks,
        pool=settings.pool,
        partitions_def=activity_days,
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=7),
    )
    def spotler_contact_histories(
        context: dg.AssetExecutionContext,
        config: ContactHistoryConfig,
        spotler: SpotlerResource,
        warehouse: WarehouseResource,
        clock: ClockResource,
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        run = run_days(context)
        tables = selected_tables(context, [h.table for h in HISTORIES])
        histories = [h for h in HISTORIES if h.table in tables]
        contacts = contacts_to_read(config, run, warehouse, context.log)
        fetched_at = clock.now(tz)
        with spotler.get_client(warehouse.contact_key()) as client:
            tasks = history_tasks(client, histories, contacts, run.window.start.tzinfo, fetched_at)
            context.log.info(
                f"Reading {', '.join(t.name for t in tables)} of {len(contacts.days_of):,} "
                f"contacts for {run.text} ({len(tasks):,} paged reports)"
            )
            # Only the contacts read replace their rows: one unknown to Spotler, or over the
            # bound this time, keeps what is stored.
            written = fetch_and_write(
                warehouse,
                tasks,
                tables,
                run.days,
                scope=ItemScope("contact_external_id", list(contacts.days_of)),
                account=spotler.account(),
                max_workers=spotler.max_concurrent_requests,
                log=context.log,
                requests=lambda: client.request_count,
            )
            requests = client.request_count
        if written.missing:
            context.log.warning(
                f"{len(written.missing)} contacts are unknown to Spotler (CONTACT_NOT_FOUND), "
                "e.g. deleted since, or an address given in a form that is no contact"
            )
        yield from materialize_results(
            written.results,
            tables,
            api_requests=requests,
            window=run.text,
            extra={
                "contacts": dg.MetadataValue.int(len(contacts.days_of)),
                "contacts_skipped_over_bound": dg.MetadataValue.int(contacts.skipped),
                "contacts_not_found": dg.MetadataValue.int(len(written.missing)),
                "on_demand": dg.MetadataValue.bool(bool(config.contacts_file)),
            },
        )
        yield from inline_results(context, warehouse, checks, run.days)

    return [spotler_contact_histories]


def build_contact_definitions(settings: DeploymentSettings) -> dg.Definitions:
    """Contact-card assets, checks and job, to merge into the code location."""
    (histories,) = build_contact_assets(settings)
    description = (
        "The API's history of each contact active on a range of days (or of the contacts "
        "listed in the file the run config names)."
    )
    return automated_group(
        {"spotler_contact_histories_refresh": (histories, description)},
        ("spotler_contact_histories_all_days", contact_checks()),
        settings.timezone,
    )
