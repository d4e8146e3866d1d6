"""Data-quality queries behind the asset checks. Each returns what it found, so a check
can both pass/fail and show the offending rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb

from spotler_pipeline.warehouse.model import SCHEMA, Table

SAMPLE = 10


@dataclass(frozen=True)
class Finding:
    """Outcome of one quality query: ``problems`` rows that break the rule, with a sample."""

    checked: int
    problems: int
    sample: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.problems == 0


def _finding(conn: duckdb.DuckDBPyConnection, checked_sql: str, problems_sql: str) -> Finding:
    checked = conn.execute(checked_sql).fetchone()
    cur = conn.execute(f"SELECT count(*) FROM ({problems_sql})")
    problems = cur.fetchone()
    sample_cur = conn.execute(f"{problems_sql} LIMIT {SAMPLE}")
    names = [d[0] for d in sample_cur.description]
    sample = [
        {
            k: (v if isinstance(v, int | float | str | None) else str(v))
            for k, v in zip(names, row, strict=True)
        }
        for row in sample_cur.fetchall()
    ]
    return Finding(int(checked[0]) if checked else 0, int(problems[0]) if problems else 0, sample)


def duplicate_keys(conn: duckdb.DuckDBPyConnection, table: Table) -> Finding:
    """Key values that occur more than once in ``table``."""
    keys = ", ".join(f'"{k}"' for k in table.primary_key)
    return _finding(
        conn,
        f"SELECT count(*) FROM {table.qualified_name}",
        f"SELECT {keys}, count(*) AS copies FROM {table.qualified_name} "
        f"GROUP BY ALL HAVING count(*) > 1 ORDER BY copies DESC",
    )


def clicks_without_link(conn: duckdb.DuckDBPyConnection, clicks: str, links: str) -> Finding:
    """Clicks whose (mailing_id, link_id) is not a link of that mailing."""
    return _finding(
        conn,
        f"SELECT count(*) FROM {SCHEMA}.{clicks}",
        f"SELECT c.mailing_id, c.link_id, count(*) AS clicks FROM {SCHEMA}.{clicks} c "
        f"ANTI JOIN {SCHEMA}.{links} l ON c.mailing_id = l.mailing_id AND c.link_id = l.link_id "
        f"GROUP BY ALL ORDER BY clicks DESC",
    )


def recipients_vs_sent_count(conn: duckdb.DuckDBPyConnection) -> Finding:
    """Mailings whose recipient rows differ from their ``sent_count``.

    Only send days whose recipients have been loaded are compared, so a day that is not
    materialised yet is not reported as missing recipients.
    """
    return _finding(
        conn,
        f"SELECT count(*) FROM {SCHEMA}.mailings WHERE send_day IN "
        f"(SELECT DISTINCT send_day FROM {SCHEMA}.mailing_recipients)",
        f"""
        SELECT m.encrypted_id AS mailing_id, m.send_day, m.sent_count,
               coalesce(r.recipients, 0) AS recipients
        FROM {SCHEMA}.mailings m
        LEFT JOIN (SELECT mailing_id, count(*) AS recipients
                   FROM {SCHEMA}.mailing_recipients GROUP BY mailing_id) r
          ON r.mailing_id = m.encrypted_id
        WHERE m.send_day IN (SELECT DISTINCT send_day FROM {SCHEMA}.mailing_recipients)
          AND coalesce(r.recipients, 0) <> coalesce(m.sent_count, 0)
        ORDER BY m.send_day, m.encrypted_id
        """,
    )


def unique_contacts_vs_statistics(
    conn: duckdb.DuckDBPyConnection,
    interactions: str,
    statistic: str,
    relative_tolerance: float,
    absolute_tolerance: int,
) -> Finding:
    """Mailings whose distinct contacts in ``interactions`` differ from the latest snapshot's
    ``statistic`` by more than ``max(absolute, relative * statistic)``.

    The two are read at different moments (interactions at their load, statistics at their
    snapshot), hence the tolerance; a mailing without a snapshot is not compared.
    """
    return _finding(
        conn,
        f"SELECT count(DISTINCT mailing_id) FROM {SCHEMA}.{interactions}",
        f"""
        SELECT s.mailing_id, s.snapshot_at, s.{statistic} AS statistic,
               i.contacts AS distinct_contacts
        FROM {SCHEMA}.mailing_stats_latest s
        JOIN (SELECT mailing_id, count(DISTINCT contact_encrypted_id) AS contacts
              FROM {SCHEMA}.{interactions} GROUP BY mailing_id) i
          ON i.mailing_id = s.mailing_id
        WHERE abs(i.contacts - s.{statistic}) >
              greatest({absolute_tolerance}, {relative_tolerance} * s.{statistic})
        ORDER BY s.mailing_id
        """,
    )


# -- campaigns, forms and the contact card (issue 4) -----------------------------------------


def campaign_clicks_without_link(conn: duckdb.DuckDBPyConnection) -> Finding:
    """Campaign clicks whose (campaign_mailing_id, link_id) is not a link of that step."""
    return _finding(
        conn,
        f"SELECT count(*) FROM {SCHEMA}.campaign_mailing_clicks",
        f"SELECT c.campaign_mailing_id, c.link_id, count(*) AS clicks "
        f"FROM {SCHEMA}.campaign_mailing_clicks c "
        f"ANTI JOIN {SCHEMA}.campaign_mailing_links l "
        f"ON c.campaign_mailing_id = l.campaign_mailing_id AND c.link_id = l.link_id "
        f"GROUP BY ALL ORDER BY clicks DESC",
    )


def interactions_of_unknown_steps(conn: duckdb.DuckDBPyConnection, interactions: str) -> Finding:
    """Campaign interactions whose step (or its campaign) is not in the catalogue."""
    return _finding(
        conn,
        f"SELECT count(*) FROM {SCHEMA}.{interactions}",
        f"SELECT i.campaign_id, i.campaign_mailing_id, count(*) AS events "
        f"FROM {SCHEMA}.{interactions} i "
        f"ANTI JOIN {SCHEMA}.campaign_mailings m "
        f"ON m.encrypted_id = i.campaign_mailing_id AND m.campaign_id = i.campaign_id "
        f"GROUP BY ALL ORDER BY events DESC",
    )


def rows_without_parent(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    keys: dict[str, str],
    parent: str,
) -> Finding:
    """Rows of ``table`` whose item is missing from catalogue ``parent``.

    ``keys`` maps the row's columns to the parent's (e.g. ``{"mailing_id": "encrypted_id"}``).
    Such orphans mean a load from another account or a catalogue that was never loaded.
    """
    cols = ", ".join(f"i.{c}" for c in keys)
    match = " AND ".join(f"p.{pc} = i.{c}" for c, pc in keys.items())
    return _finding(
        conn,
        f"SELECT count(*) FROM {SCHEMA}.{table}",
        f"SELECT {cols}, count(*) AS orphan_rows FROM {SCHEMA}.{table} i "
        f"ANTI JOIN {SCHEMA}.{parent} p ON {match} GROUP BY ALL ORDER BY orphan_rows DESC",
    )


def contact_mailing_card_vs_history(conn: duckdb.DuckDBPyConnection) -> Finding:
    """Disagreements between ``contact_mailing_card`` (built from the interaction tables)
    and the API's own history of the contacts fetched (latest fetch per contact).

    Only mailings whose interactions are loaded are compared: a mailing of a send day not
    materialised yet is not reported as missing from the card.
    """
    return _reconcile(
        conn,
        api=f"""
            SELECT * FROM {SCHEMA}.contact_mailing_history_latest
            WHERE mailing_id IN (SELECT encrypted_id FROM {SCHEMA}.mailings
                                 WHERE send_day IN (SELECT DISTINCT send_day
                                                    FROM {SCHEMA}.mailing_recipients))
        """,
        card=f"SELECT * FROM {SCHEMA}.contact_mailing_card",
        fetched=f"SELECT DISTINCT contact_external_id FROM {SCHEMA}.contact_mailing_history",
        key=("contact_external_id", "mailing_id"),
    )


def contact_campaign_card_vs_history(conn: duckdb.DuckDBPyConnection) -> Finding:
    """Disagreements between ``contact_campaign_mailing_card`` and the API's campaign
    history of the contacts fetched, per step and subscription, for sends on loaded days."""
    return _reconcile(
        conn,
        api=f"""
            SELECT * FROM {SCHEMA}.contact_campaign_mailing_history_latest
            WHERE sent_day IN (SELECT DISTINCT event_day
                               FROM {SCHEMA}.campaign_mailing_recipients)
        """,
        card=f"SELECT * FROM {SCHEMA}.contact_campaign_mailing_card",
        fetched=(
            f"SELECT DISTINCT contact_external_id FROM {SCHEMA}.contact_campaign_mailing_history"
        ),
        key=("contact_external_id", "campaign_mailing_id", "campaign_subscription_id"),
    )


def _reconcile(
    conn: duckdb.DuckDBPyConnection, api: str, card: str, fetched: str, key: tuple[str, ...]
) -> Finding:
    on = " AND ".join(f"a.{k} = c.{k}" for k in key)
    keys = ", ".join(f"coalesce(a.{k}, c.{k}) AS {k}" for k in key)
    return _finding(
        conn,
        f"SELECT count(*) FROM ({api})",
        f"""
        WITH api AS ({api}),
             card AS ({card} WHERE contact_external_id IN ({fetched}))
        SELECT {keys},
               CASE WHEN c.{key[-1]} IS NULL THEN 'only in the API history'
                    WHEN a.{key[-1]} IS NULL THEN 'only in the interaction tables'
                    ELSE 'opened/clicked/bounce differ' END AS disagreement,
               a.opened AS api_opened, c.opened AS card_opened,
               a.clicked AS api_clicked, c.clicked AS card_clicked,
               a.bounce AS api_bounce, c.bounce AS card_bounce
        FROM api a FULL JOIN card c ON {on}
        WHERE a.{key[-1]} IS NULL OR c.{key[-1]} IS NULL
           OR a.opened IS DISTINCT FROM c.opened OR a.clicked IS DISTINCT FROM c.clicked
           OR a.bounce IS DISTINCT FROM c.bounce
        ORDER BY ALL
        """,
    )


def contact_forms_vs_results(conn: duckdb.DuckDBPyConnection) -> Finding:
    """Submissions in the contacts' form histories that disagree with ``form_results``:
    missing there (for loaded submit days), or with another time or completion."""
    api = f"""
        SELECT * FROM {SCHEMA}.contact_form_history_latest
        WHERE submit_day IN (SELECT DISTINCT submit_day FROM {SCHEMA}.form_results)
    """
    return _finding(
        conn,
        f"SELECT count(*) FROM ({api})",
        f"""
        SELECT h.contact_external_id, h.form_id, h.form_result_id,
               CASE WHEN r.form_result_id IS NULL THEN 'missing from form_results'
                    ELSE 'submitted_at/completed differ' END AS disagreement,
               h.submit_date AS api_submit_date, r.submitted_at AS result_submitted_at,
               h.completed AS api_completed, r.completed AS result_completed
        FROM ({api}) h
        LEFT JOIN {SCHEMA}.form_results r
          ON r.form_id = h.form_id AND r.form_result_id = h.form_result_id
        WHERE r.form_result_id IS NULL OR r.submitted_at IS DISTINCT FROM h.submit_date
           OR r.completed IS DISTINCT FROM h.completed
        ORDER BY ALL
        """,
    )
