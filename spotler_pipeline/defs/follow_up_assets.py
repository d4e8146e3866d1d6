"""Follow-up rules as assets: from what the warehouse reports to the next step in Spotler.

Each rule of ``follow_up_rules.yaml`` is the asset ``follow_ups/<rule>`` (group
``follow_ups``), downstream of the spotler tables its query reads and refreshed by the same
declarative automation once they are. One step does the whole of a rule, in this order:

1. evaluate: the rule's table ``follow_ups.<rule>`` is replaced by its query's rows
   (checks: ``event_key`` unique, every contact known to the warehouse);
2. reconcile: ``sending`` attempts a crashed run left (a request may have reached Spotler,
   its answer was never recorded) become ``unknown``, with a warning and a failing check
   (``no_unresolved_sends``); they are never sent again unless a person launches a run with
   ``resend_unknown: true``;
3. act: with the action off (the default) the events are recorded as a dry run (what would
   be sent, a sample in the metadata); switched on, each event not yet sent, rejected or
   unresolved is claimed in ``action_log`` (``sending``, committed) before its one request,
   and Spotler's answer is recorded after it. More events than ``max_sends_per_run`` and the
   run sends nothing and fails, saying how many and which setting to raise.

An event once ``sent`` is never sent again, whatever is re-run, backfilled or retried.
Contacts appear in metadata and logs only as masked tags.
"""

from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import dagster as dg
import duckdb
from pydantic import Field

from spotler_pipeline.client import SpotlerClient, contact_tag
from spotler_pipeline.client.actions import Outcome, trigger_campaign, update_contact
from spotler_pipeline.defs.checks import masked_sample
from spotler_pipeline.defs.config import DeploymentSettings
from spotler_pipeline.defs.follow_up_rules import Rule, load_rules
from spotler_pipeline.defs.metadata import asset_key as spotler_key
from spotler_pipeline.defs.resources import ClockResource, SpotlerResource, WarehouseResource
from spotler_pipeline.defs.schedules import DOES_METADATA, daily_after_upstream
from spotler_pipeline.warehouse import ALL_TABLES, ensure_schema
from spotler_pipeline.warehouse import follow_ups as fu

GROUP = "follow_ups"
#: The job that runs every rule at once (the automation runs each after its tables).
FOLLOW_UPS_JOB = "spotler_follow_ups"
SAMPLE_SIZE = 5
_TABLES = {t.name: t for t in ALL_TABLES}


class FollowUpConfig(dg.Config):
    """Run config of a follow-up rule."""

    resend_unknown: bool = Field(
        default=False,
        description=(
            "Send again the events whose earlier request may have reached Spotler without its "
            "answer being recorded (state 'unknown'): only after checking them in Spotler."
        ),
    )


def asset_key(rule: str) -> dg.AssetKey:
    return dg.AssetKey([GROUP, rule])


def check_specs(rule: Rule) -> list[dg.AssetCheckSpec]:
    key = asset_key(rule.name)
    return [
        dg.AssetCheckSpec("event_key_unique", asset=key, description="Each event once."),
        dg.AssetCheckSpec(
            "contacts_known",
            asset=key,
            description="Every event names a contact (external id) the warehouse knows as a "
            "recipient or form submitter.",
        ),
        dg.AssetCheckSpec(
            "no_unresolved_sends",
            asset=key,
            description="No request of this rule may have reached Spotler without its answer "
            "being recorded (state 'unknown'): each needs a person to check the contact.",
        ),
    ]


@dataclass
class Evaluation:
    """What step 1-2 found, read in the same transaction; the two checks' counts are read
    once it has committed."""

    columns: list[str]
    events: int
    pending: fu.Pending
    reconciled: int
    duplicates: int = 0
    unknown_contacts: int = 0
    previewed: int = 0


@dataclass
class Sends:
    """What step 3 sent in this run."""

    outcomes: dict[str, int] = field(default_factory=dict)
    skipped: int = 0

    def add(self, status: str) -> None:
        self.outcomes[status] = self.outcomes.get(status, 0) + 1


def _one_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def evaluate(
    warehouse: WarehouseResource,
    rule: Rule,
    now: datetime,
    run_id: str,
    resend_unknown: bool,
) -> Evaluation:
    """Steps 1-2 (and the dry run's record) in one transaction."""

    def work(conn: duckdb.DuckDBPyConnection) -> Evaluation:
        ensure_schema(conn)
        fu.ensure_follow_ups(conn)
        query, params = rule.sql(now)
        columns = fu.evaluate_rule(conn, rule.name, query, params)
        wanted = [c for c in (rule.action.fields.values() if rule.action else ()) if c]
        missing = [c for c in wanted if c not in columns]
        if missing:
            raise ValueError(f"the action's fields name no column {', '.join(missing)}")
        fu.refresh_status_view(conn)
        reconciled = fu.reconcile(conn, rule.name, now)
        # Live, the cap's worth is all a run may send (more fails it); a dry run shows a sample.
        limit = (
            SAMPLE_SIZE if rule.dry_run or rule.action is None else rule.action.max_sends_per_run
        )
        pending = fu.events_to_act_on(conn, rule.name, limit=limit, include_unknown=resend_unknown)
        found = Evaluation(
            columns=columns,
            events=fu.event_count(conn, rule.name),
            pending=pending,
            reconciled=reconciled,
        )
        if rule.dry_run:
            found.previewed = fu.record_dry_run(conn, rule.name, run_id, now)
        return found

    def check(conn: duckdb.DuckDBPyConnection, found: Evaluation) -> Evaluation:
        # After the commit: inside the transaction the new rule table is held in memory that
        # cannot spill, and the contacts check reads every recipient of the warehouse.
        found.duplicates = fu.duplicate_keys(conn, rule.name)
        found.unknown_contacts = fu.unknown_contacts(conn, rule.name, fu.KNOWN_CONTACTS_IN)
        return found

    try:
        found = warehouse.transact(work)
        return warehouse.transact(lambda conn: check(conn, found))
    except (duckdb.Error, ValueError) as exc:
        raise dg.Failure(
            description=f"Follow-up rule '{rule.name}' could not be evaluated: {_one_line(exc)}"
        ) from None


def send_one(client: SpotlerClient, rule: Rule, event: fu.Event) -> Outcome:
    """The action's one request for ``event``."""
    action = rule.action
    assert action is not None and event.contact_external_id is not None
    values = {name: event.row.get(column) for name, column in action.fields.items()}
    if action.kind == "trigger_campaign":
        assert action.target is not None
        return trigger_campaign(client, action.target, event.contact_external_id, values)
    return update_contact(client, event.contact_external_id, values)


def act(
    warehouse: WarehouseResource,
    client_of: Callable[[], Any],
    rule: Rule,
    events: Sequence[fu.Event],
    run_id: str,
    now: Callable[[], datetime],
    log: Any,
    *,
    resend_unknown: bool,
) -> Sends:
    """Step 3, switched on: claim, send, record, one event at a time. The warehouse is
    opened only between requests, never across one: each transaction records the previous
    event's answer and claims the next event, committed before its request goes out."""
    action = rule.action
    assert action is not None
    sends = Sends()
    answered: tuple[fu.Event, int, Outcome] | None = None

    def record(conn: duckdb.DuckDBPyConnection) -> None:
        if answered is not None:
            event, attempt, outcome = answered
            fu.record_outcome(
                conn,
                rule.name,
                event.event_key,
                attempt,
                status=outcome.status,
                http_status=outcome.http_status,
                error_type=outcome.error_type,
                message=outcome.message,
                now=now(),
            )

    def record_and_claim(conn: duckdb.DuckDBPyConnection, event: fu.Event) -> int | None:
        record(conn)
        if not event.contact_external_id:
            _no_contact(conn, rule, event, run_id, now())
            return None
        return fu.claim(
            conn, rule.name, event, action.label(), run_id, now(), include_unknown=resend_unknown
        )

    with client_of() as client:
        for event in events:
            try:
                attempt = warehouse.transact(lambda c, e=event: record_and_claim(c, e))
            except Exception:
                # The claim failed: the answer already in hand is still worth recording.
                if answered is not None:
                    with suppress(Exception):
                        warehouse.transact(record)
                raise
            answered = None
            if not event.contact_external_id:
                sends.add("rejected")
                continue
            if attempt is None:  # sent or claimed by another run since this one looked
                sends.skipped += 1
                continue
            outcome = send_one(client, rule, event)
            answered = (event, attempt, outcome)
            sends.add(outcome.status)
            if outcome.status != "sent":
                log.warning(
                    f"{rule.name}: {outcome.status} for "
                    f"{contact_tag(event.contact_external_id, warehouse.contact_key())}"
                    f" (HTTP {outcome.http_status or '-'}"
                    f"{', ' + outcome.error_type if outcome.error_type else ''}"
                    f"{': ' + outcome.message if outcome.message else ''})"
                )
        if answered is not None:
            warehouse.transact(record)
    return sends


def _no_contact(
    conn: duckdb.DuckDBPyConnection, rule: Rule, event: fu.Event, run_id: str, now: datetime
) -> None:
    attempt = fu.claim(conn, rule.name, event, "none", run_id, now)
    if attempt is not None:
        fu.record_outcome(
            conn,
            rule.name,
            event.event_key,
            attempt,
            status="rejected",
            http_status=None,
            error_type=None,
            message="no contact external id in the warehouse: nothing to address",
            now=now,
        )


def sample_table(
    events: Sequence[fu.Event], columns: Sequence[str], contact_key: bytes | None = None
) -> str:
    """A markdown sample of events; contacts as their tags under ``contact_key`` (the
    warehouse's), also an e-mail address in another column."""
    shown = [c for c in columns if c not in ("event_key", "contact_external_id")][:5]
    lines = [
        "| contact | " + " | ".join(shown) + " |",
        "|---" * (len(shown) + 1) + "|",
    ]
    rows = masked_sample(
        [
            {"contact_external_id": e.contact_external_id, **{c: e.row.get(c, "") for c in shown}}
            for e in events[:SAMPLE_SIZE]
        ],
        contact_key,
    )
    for row in rows:
        cells = [str(row[c]).replace("|", "/")[:60] for c in shown]
        lines.append(f"| {row['contact_external_id'] or '-'} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def build_rule_asset(rule: Rule, settings: DeploymentSettings) -> dg.AssetsDefinition:
    tz = settings.timezone
    deps = [spotler_key(_TABLES[d]) for d in rule.deps]
    action = rule.action
    what = (
        "No action: the table is the list."
        if action is None
        else f"Action: {action.label()} (max {action.max_sends_per_run} a run), "
        + ("dry run: nothing is sent until `enabled: true`." if rule.dry_run else "switched on.")
    )

    @dg.asset(
        key=asset_key(rule.name),
        group_name=GROUP,
        deps=deps,
        description=(
            f"{rule.description}\n\n{what}\n\nDuckDB table `{fu.SCHEMA}.{rule.name}` (one row "
            f"per event, key `event_key`); outcomes in `{fu.ACTION_LOG}`, counts in "
            f"`{fu.STATUS_VIEW}`."
        ),
        kinds={"duckdb"},
        automation_condition=daily_after_upstream(tz),
        check_specs=check_specs(rule),
        pool=settings.pool,
        metadata={
            "dagster/table_name": f"{fu.SCHEMA}.{rule.name}",
            "primary_key": "event_key",
            DOES_METADATA: "evaluate the follow-up rule; send its new events to Spotler once "
            "its action is switched on (else a dry run)",
        },
    )
    def _rule_asset(
        context: dg.AssetExecutionContext,
        config: FollowUpConfig,
        spotler: SpotlerResource,
        warehouse: WarehouseResource,
        clock: ClockResource,
    ) -> Iterator[dg.MaterializeResult]:
        run_id = context.run.run_id
        found = evaluate(warehouse, rule, clock.now(tz), run_id, config.resend_unknown)
        if found.reconciled:
            context.log.warning(
                f"{rule.name}: {found.reconciled} request(s) of an earlier run may have reached "
                "Spotler without their answer being recorded; marked 'unknown' and not sent "
                "again. Check those contacts in Spotler (follow_ups.action_log, status "
                "'unknown'); relaunch with resend_unknown: true to send them anyway."
            )
        sends = Sends()
        if not rule.dry_run:
            assert action is not None
            if found.pending.count > action.max_sends_per_run:
                raise dg.Failure(
                    description=(
                        f"Follow-up rule '{rule.name}' would send {found.pending.count} "
                        f"requests, more than max_sends_per_run={action.max_sends_per_run}; "
                        "nothing was sent. Raise max_sends_per_run of this rule in the rules "
                        "file (or narrow its query) to send them."
                    )
                )
            sends = act(
                warehouse,
                lambda: spotler.get_client(warehouse.contact_key()),
                rule,
                found.pending.first,
                run_id,
                lambda: clock.now(tz),
                context.log,
                resend_unknown=config.resend_unknown,
            )
        with warehouse.read() as conn:
            status = fu.status_of(conn, rule.name)
        yield dg.MaterializeResult(
            metadata=_metadata(rule, found, sends, status, warehouse.contact_key()),
            check_results=[
                dg.AssetCheckResult(
                    check_name="event_key_unique",
                    passed=found.duplicates == 0,
                    metadata={"duplicate_keys": found.duplicates},
                ),
                dg.AssetCheckResult(
                    check_name="contacts_known",
                    passed=found.unknown_contacts == 0,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={"unknown_contacts": found.unknown_contacts},
                ),
                dg.AssetCheckResult(
                    check_name="no_unresolved_sends",
                    passed=status["needs_attention"] == 0,
                    metadata={"needs_attention": status["needs_attention"]},
                ),
            ],
        )

    return _rule_asset


def _metadata(
    rule: Rule, found: Evaluation, sends: Sends, status: dict[str, Any], contact_key: bytes
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "mode": "dry run" if rule.dry_run else "live",
        "events": dg.MetadataValue.int(found.events),
        "new_events": dg.MetadataValue.int(found.pending.new),
        "sent": dg.MetadataValue.int(status["sent"]),
        "rejected": dg.MetadataValue.int(status["rejected"]),
        "rejected_by_reason": dg.MetadataValue.json(status["rejected_by_reason"]),
        "pending": dg.MetadataValue.int(status["pending"]),
        "dry_run": dg.MetadataValue.int(status["dry_run"]),
        "needs_attention": dg.MetadataValue.int(status["needs_attention"]),
    }
    if rule.dry_run:
        meta["would_send"] = dg.MetadataValue.int(found.pending.count)
        meta["sample"] = dg.MetadataValue.md(
            sample_table(found.pending.first, found.columns, contact_key)
        )
    else:
        meta["this_run"] = dg.MetadataValue.json({**sends.outcomes, "skipped": sends.skipped})
    return meta


def build_follow_up_definitions(
    settings: DeploymentSettings, rules: Sequence[Rule] | None = None
) -> dg.Definitions:
    """One asset per rule (the rules file's, unless ``rules`` are given)."""
    rules = load_rules() if rules is None else rules
    return dg.Definitions(
        assets=[build_rule_asset(r, settings) for r in rules],
        jobs=[
            dg.define_asset_job(
                FOLLOW_UPS_JOB,
                selection=dg.AssetSelection.groups(GROUP),
                description="Every follow-up rule: evaluate it, then act (or dry-run).",
            )
        ],
    )
