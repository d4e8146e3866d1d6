"""Schema ``follow_ups``: what the follow-up rules found, and what was sent about it.

- ``follow_ups.<rule>``: one row per *event* a rule found in the warehouse (re-evaluated
  whole at every run), with a stable ``event_key``, the contact, the reason and the fields
  its action needs.
- ``follow_ups.action_log``: one row per attempt to act on an event (``rule``,
  ``event_key``, ``attempt``), with Spotler's answer. The latest attempt of an event is its
  state: ``dry_run`` (previewed, nothing sent), ``sending`` (claimed, request under way),
  ``sent``, ``rejected`` (Spotler said no for good), ``failed`` (transient; sent again on a
  later run) or ``unknown`` (the request may have reached Spotler, its answer was not
  recorded: needs a person; never sent again automatically).
- ``follow_ups.follow_up_status``: per rule, the counts a notebook or CRM wants.

Exactly once rests on two statements here: :func:`claim` records ``sending`` in its own
committed transaction *before* a request goes out, and only for an event whose latest state
allows a send; :func:`reconcile` turns ``sending`` rows a crashed run left behind into
``unknown`` before any new send. Knows nothing of HTTP or Dagster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from spotler_pipeline.warehouse.sql import sql_identifier, sql_string

SCHEMA = "follow_ups"
ACTION_LOG = f"{SCHEMA}.action_log"
STATUS_VIEW = f"{SCHEMA}.follow_up_status"

#: Columns every rule's query must return (besides the fields its action uses).
REQUIRED_COLUMNS = ("event_key", "contact_external_id", "reason", "event_at")

#: Where a contact must appear to count as known (a recipient, or a form's submitter).
KNOWN_CONTACTS_IN = (
    "spotler.mailing_recipients",
    "spotler.campaign_mailing_recipients",
    "spotler.contact_form_history",
)

#: Latest states from which an event may be sent (``None``: never acted on).
SENDABLE = ("dry_run", "failed")

ACTION_LOG_DDL = f"""
CREATE TABLE IF NOT EXISTS {ACTION_LOG} (
    rule VARCHAR,
    event_key VARCHAR,
    contact_external_id VARCHAR,
    action VARCHAR,
    attempt INTEGER,
    status VARCHAR,
    http_status INTEGER,
    error_type VARCHAR,
    message VARCHAR,
    run_id VARCHAR,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ
)
"""

_LOG_COMMENTS = {
    "rule": "The follow-up rule (its table follow_ups.<rule>).",
    "event_key": "The rule's stable key of the event acted on.",
    "contact_external_id": "The contact the action addressed (Spotler external id).",
    "action": "What was done: trigger_campaign:<trigger id>, set_property:<names>, dry_run.",
    "attempt": "1, 2, ... per event (0: a dry-run preview, nothing sent).",
    "status": "dry_run, sending, sent, rejected (permanent), failed (transient) or unknown "
    "(may have reached Spotler; needs a person).",
    "http_status": "Spotler's HTTP status (204 sent, 400/404 rejected, 429/5xx failed).",
    "error_type": "Spotler's errorType (e.g. CONTACT_OPTOUT, TRIGGER_NOTFOUND).",
    "message": "Spotler's message, or why the state was set (contact ids masked).",
    "run_id": "The Dagster run that made the attempt.",
    "started_at": "When the attempt was recorded (before the request).",
    "finished_at": "When its outcome was recorded.",
}


@dataclass(frozen=True)
class Event:
    """One event to act on: its key, contact and the rule's row (column -> value)."""

    event_key: str
    contact_external_id: str | None
    row: Mapping[str, Any]


def ensure_follow_ups(conn: duckdb.DuckDBPyConnection) -> None:
    """Create schema ``follow_ups`` and its action log when missing."""
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    conn.execute(ACTION_LOG_DDL)
    conn.execute(
        f"COMMENT ON TABLE {ACTION_LOG} IS "
        + sql_string("One row per attempt of a follow-up action; the latest is the event's state.")
    )
    for column, text in _LOG_COMMENTS.items():
        conn.execute(f"COMMENT ON COLUMN {ACTION_LOG}.{column} IS {sql_string(text)}")


def rule_table(rule: str) -> str:
    return f"{SCHEMA}.{sql_identifier(rule)}"


def evaluate_rule(
    conn: duckdb.DuckDBPyConnection, rule: str, query: str, params: Mapping[str, Any]
) -> list[str]:
    """Replace ``follow_ups.<rule>`` with the rows of ``query`` (``$name`` parameters from
    ``params``), in one statement; returns its columns. A query lacking a required column
    raises ``ValueError`` naming it, and the table keeps its previous rows."""
    used = dict(params)
    columns = [d[0] for d in conn.execute(f"DESCRIBE {query}", used).fetchall()]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"its query returns no {', '.join(missing)} column")
    conn.execute(f"CREATE OR REPLACE TABLE {rule_table(rule)} AS {query}", used)
    return columns


def refresh_status_view(conn: duckdb.DuckDBPyConnection) -> None:
    """(Re)create ``follow_up_status`` over every rule table that exists."""
    rules = [
        r[0]
        for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
            "AND table_catalog = current_database() AND table_type = 'BASE TABLE' "
            "AND table_name <> 'action_log' ORDER BY table_name",
            [SCHEMA],
        ).fetchall()
    ]
    events = (
        " UNION ALL ".join(
            f"SELECT {sql_string(r)} AS rule, event_key FROM {rule_table(r)}" for r in rules
        )
        or "SELECT NULL::VARCHAR AS rule, NULL::VARCHAR AS event_key WHERE false"
    )
    # Every evaluated rule has its row, one that found nothing too.
    named = (
        " UNION ALL ".join(f"SELECT {sql_string(r)} AS rule" for r in rules)
        or "SELECT NULL::VARCHAR AS rule WHERE false"
    )
    conn.execute(f"""
CREATE OR REPLACE VIEW {STATUS_VIEW} AS
-- per rule: events found now and their state (latest attempt), and every outcome so far
WITH latest AS (
    SELECT rule, event_key, arg_max(status, attempt) AS status,
           arg_max(coalesce(error_type, 'HTTP ' || http_status::VARCHAR, 'no answer')
                   || coalesce(': ' || message, ''), attempt) AS reason
    FROM action_log GROUP BY rule, event_key
), events AS ({events}
), current AS (
    SELECT e.rule, l.status FROM events e LEFT JOIN latest l USING (rule, event_key)
), reasons AS (
    SELECT rule, map_from_entries(list({{'k': reason, 'v': n}} ORDER BY n DESC)) AS by_reason
    FROM (SELECT rule, reason, count(*) AS n FROM latest WHERE status = 'rejected' GROUP BY ALL)
    GROUP BY rule
), now_found AS (
    SELECT rule, count(*) AS events,
           count(*) FILTER (WHERE status IS NULL) AS new,
           count(*) FILTER (WHERE status = 'dry_run') AS dry_run,
           count(*) FILTER (WHERE status = 'failed') AS pending
    FROM current GROUP BY rule
), so_far AS (
    SELECT rule,
           count(*) FILTER (WHERE status = 'sent') AS sent,
           count(*) FILTER (WHERE status = 'rejected') AS rejected,
           count(*) FILTER (WHERE status IN ('unknown', 'sending')) AS needs_attention
    FROM latest GROUP BY rule
), every_rule AS ({named}
    UNION SELECT rule FROM so_far
)
SELECT rule, coalesce(n.events, 0) AS events, coalesce(n.new, 0) AS new,
       coalesce(n.dry_run, 0) AS dry_run, coalesce(s.sent, 0) AS sent,
       coalesce(s.rejected, 0) AS rejected, r.by_reason AS rejected_by_reason,
       coalesce(n.pending, 0) AS pending, coalesce(s.needs_attention, 0) AS needs_attention
FROM every_rule LEFT JOIN now_found n USING (rule) LEFT JOIN so_far s USING (rule)
LEFT JOIN reasons r USING (rule)
ORDER BY rule
""")


def status_of(conn: duckdb.DuckDBPyConnection, rule: str) -> dict[str, Any]:
    """The rule's row of ``follow_up_status`` as a dict (zeros for a rule never run)."""
    cursor = conn.execute(f"SELECT * FROM {STATUS_VIEW} WHERE rule = ?", [rule])
    names = [d[0] for d in cursor.description]
    row = cursor.fetchone()
    if row is None:
        return {n: ({} if n == "rejected_by_reason" else 0) for n in names if n != "rule"}
    status = dict(zip(names, row, strict=True))
    status.pop("rule")
    status["rejected_by_reason"] = dict(status["rejected_by_reason"] or {})
    return status


def reconcile(conn: duckdb.DuckDBPyConnection, rule: str, now: datetime) -> int:
    """Mark ``sending`` attempts of ``rule`` (a run ended between a request and recording
    its answer) as ``unknown``: Spotler may have acted on them, so they are not sent again
    without a person's say. Returns how many. Called before a run's first send; should
    another run of the rule be sending at that moment, its answer, recorded after, wins,
    and its claims still keep both from sending one event twice."""
    (count,) = conn.execute(
        f"UPDATE {ACTION_LOG} SET status = 'unknown', finished_at = ?, message = "
        "'the run sending it ended before recording Spotler''s answer; check the contact "
        "in Spotler' WHERE rule = ? AND status = 'sending'",
        [now, rule],
    ).fetchone() or (0,)
    return int(count)


_LATEST = f"""
    SELECT event_key, arg_max(status, attempt) AS status, max(attempt) AS attempts
    FROM {ACTION_LOG} WHERE rule = $rule GROUP BY event_key
"""


@dataclass(frozen=True)
class Pending:
    """The rule's events that may be sent now: how many, how many of them were never acted
    on at all (new), and the first ``limit`` of them, oldest first."""

    count: int
    new: int
    first: list[Event]


def events_to_act_on(
    conn: duckdb.DuckDBPyConnection, rule: str, *, limit: int, include_unknown: bool = False
) -> Pending:
    """The events never acted on, previewed, or failed transiently (``unknown`` ones only
    with ``include_unknown``); only ``limit`` of them are read into memory."""
    states = [*SENDABLE, *(["unknown"] if include_unknown else [])]
    params = {"rule": rule, "states": states}
    sendable = (
        f"WITH latest AS ({_LATEST}) SELECT e.*, l.status AS _state "
        f"FROM {rule_table(rule)} e LEFT JOIN latest l USING (event_key) "
        "WHERE l.status IS NULL OR list_contains($states, l.status)"
    )
    count, new = conn.execute(
        f"SELECT count(*), count(*) FILTER (WHERE _state IS NULL) FROM ({sendable})", params
    ).fetchone() or (0, 0)
    cursor = conn.execute(
        f"{sendable} ORDER BY e.event_at, e.event_key LIMIT $limit", {**params, "limit": limit}
    )
    names = [d[0] for d in cursor.description]
    first = []
    for values in cursor.fetchall():
        row = dict(zip(names, values, strict=True))
        del row["_state"]
        first.append(Event(row["event_key"], row["contact_external_id"], row))
    return Pending(int(count), int(new), first)


def record_dry_run(conn: duckdb.DuckDBPyConnection, rule: str, run_id: str, now: datetime) -> int:
    """Record a preview (``dry_run``, attempt 0) of every event never acted on; returns how
    many were recorded. Already previewed events keep their first preview."""
    (count,) = conn.execute(
        f"INSERT INTO {ACTION_LOG} "
        "SELECT $rule, e.event_key, e.contact_external_id, 'dry_run', 0, 'dry_run', NULL, "
        "NULL, 'nothing sent: the rule''s action is off', $run, $now, $now "
        f"FROM {rule_table(rule)} e ANTI JOIN ({_LATEST}) l USING (event_key)",
        {"rule": rule, "run": run_id, "now": now},
    ).fetchone() or (0,)
    return int(count)


def claim(
    conn: duckdb.DuckDBPyConnection,
    rule: str,
    event: Event,
    action: str,
    run_id: str,
    now: datetime,
    *,
    include_unknown: bool = False,
) -> int | None:
    """Record ``sending`` for ``event`` unless its latest state forbids a send (another run
    sent or claimed it meanwhile); returns the new attempt number, or ``None``. Commit this
    before the request goes out."""
    states = [*SENDABLE, *(["unknown"] if include_unknown else [])]
    row = conn.execute(
        f"SELECT arg_max(status, attempt), max(attempt) FROM {ACTION_LOG} "
        "WHERE rule = ? AND event_key = ?",
        [rule, event.event_key],
    ).fetchone()
    state, attempts = (row[0], row[1]) if row else (None, None)
    if state is not None and state not in states:
        return None
    attempt = (attempts or 0) + 1
    conn.execute(
        f"INSERT INTO {ACTION_LOG} VALUES (?, ?, ?, ?, ?, 'sending', NULL, NULL, NULL, ?, ?, NULL)",
        [rule, event.event_key, event.contact_external_id, action, attempt, run_id, now],
    )
    return attempt


def record_outcome(
    conn: duckdb.DuckDBPyConnection,
    rule: str,
    event_key: str,
    attempt: int,
    *,
    status: str,
    http_status: int | None,
    error_type: str | None,
    message: str | None,
    now: datetime,
) -> None:
    """Store Spotler's answer on the attempt :func:`claim` recorded."""
    conn.execute(
        f"UPDATE {ACTION_LOG} SET status = ?, http_status = ?, error_type = ?, message = ?, "
        "finished_at = ? WHERE rule = ? AND event_key = ? AND attempt = ?",
        [status, http_status, error_type, message, now, rule, event_key, attempt],
    )


def event_count(conn: duckdb.DuckDBPyConnection, rule: str) -> int:
    """Events in the rule's table (what its query found at the last evaluation)."""
    (count,) = conn.execute(f"SELECT count(*) FROM {rule_table(rule)}").fetchone() or (0,)
    return int(count)


def duplicate_keys(conn: duckdb.DuckDBPyConnection, rule: str) -> int:
    """Event keys found more than once in the rule's table (each must be unique)."""
    (count,) = conn.execute(
        f"SELECT count(*) FROM (SELECT event_key FROM {rule_table(rule)} "
        "GROUP BY event_key HAVING count(*) > 1)"
    ).fetchone() or (0,)
    return int(count)


def unknown_contacts(conn: duckdb.DuckDBPyConnection, rule: str, known_in: Sequence[str]) -> int:
    """Events whose contact has no external id, or appears in none of the ``known_in``
    tables (qualified names with a ``contact_external_id`` column)."""
    known = " UNION ".join(f"SELECT contact_external_id FROM {t}" for t in known_in)
    (count,) = conn.execute(
        f"SELECT count(*) FROM {rule_table(rule)} e ANTI JOIN ({known}) k "
        "USING (contact_external_id)"
    ).fetchone() or (0,)
    return int(count)


def summary(conn: duckdb.DuckDBPyConnection) -> str:
    """Per rule, what ``follow_up_status`` says, as lines of text (the demo's last lines)."""
    lines = ["Follow-up rules (schema follow_ups; a dry run until a rule's action is on):"]
    exists = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND "
        "table_name = 'follow_up_status' AND table_catalog = current_database()",
        [SCHEMA],
    ).fetchone()
    if not exists or not exists[0]:
        return lines[0] + " none evaluated yet"
    for rule, events, dry_run, sent, rejected, pending, attention in conn.execute(
        f"SELECT rule, events, dry_run, sent, rejected, pending, needs_attention "
        f"FROM {STATUS_VIEW} ORDER BY rule"
    ).fetchall():
        lines.append(
            f"  {rule:<18} {events:>7,} events: {dry_run:,} previewed (dry run), {sent:,} sent, "
            f"{rejected:,} rejected, {pending:,} pending, {attention:,} need attention"
        )
    return "\n".join(lines)
