"""What a run asks the stored data before it fetches: which contacts were active on a day,
and which items' rows are already complete. Named reads for the Dagster layer (no HTTP)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

import duckdb

from spotler_pipeline.warehouse.campaign_tables import CAMPAIGN_INTERACTION_TABLES
from spotler_pipeline.warehouse.form_tables import FORM_ANSWERS
from spotler_pipeline.warehouse.model import SCHEMA, Table
from spotler_pipeline.warehouse.sql import sql_identifier

#: An answer that is an e-mail address (a sign-up form's address field) names the contact.
EMAIL_PATTERN = r"[^@\s]+@[^@\s]+\.[^@\s]+"


def active_contacts(
    conn: duckdb.DuckDBPyConnection, day: date, start: datetime, end: datetime
) -> dict[str, set[str]]:
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
    interactions = conn.execute(
        "SELECT DISTINCT contact_external_id FROM ("
        + " UNION ALL ".join(mailing + campaign)
        + ") WHERE contact_external_id IS NOT NULL",
        {"day": day, "start": start, "end": end},
    ).fetchall()
    answers = conn.execute(
        f"SELECT DISTINCT a.answer_text FROM {FORM_ANSWERS.qualified_name} a "
        f"JOIN {SCHEMA}.form_results r USING (form_id, form_result_id) "
        "WHERE a.submit_day = $day AND a.answer_type = 'text' AND "
        "r.test_result IS DISTINCT FROM true AND regexp_full_match(a.answer_text, $pattern)",
        {"day": day, "pattern": EMAIL_PATTERN},
    ).fetchall()
    return {
        "interactions": {r[0] for r in interactions},
        "form_answers": {r[0] for r in answers},
    }


def complete_items(
    conn: duckdb.DuckDBPyConnection,
    table: Table,
    column: str,
    expected: Mapping[str, int],
    start: date,
    end: date,
) -> dict[str, int]:
    """The items of ``expected`` (item id -> rows Spotler states it has) whose rows of
    ``table`` (item in ``column``) stored on days ``[start, end)`` already number exactly
    that: ``{item: rows}``."""
    if not expected:
        return {}
    if table.partition_column is None:
        raise ValueError(f"{table.qualified_name} is not partitioned")
    table.column(column)  # raises KeyError naming the table
    item, day = sql_identifier(column), sql_identifier(table.partition_column)
    stored = conn.execute(
        f"SELECT {item}, count(*) FROM {table.qualified_name} "
        f"WHERE {day} >= ? AND {day} < ? AND {item} IN (SELECT unnest(?::VARCHAR[])) "
        "GROUP BY ALL",
        [start, end, list(expected)],
    ).fetchall()
    return {i: int(n) for i, n in stored if n == expected[i]}
