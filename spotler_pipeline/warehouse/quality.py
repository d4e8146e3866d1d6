"""Data-quality queries behind the asset checks. Each returns what it found, so a check
can both pass/fail and show the offending rows.

Every query takes an optional :class:`Window`: days ``start <= day < end`` of the checked
table's partition column. A check that runs in the step that wrote passes the window just
written, so its cost follows the day's data and not the warehouse's history; the nightly
checks pass none and scan whole tables. Rows outside the window are still read where the
rule needs them (the catalogue a row must belong to, a contact's history on other days).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from spotler_pipeline.warehouse.model import SCHEMA, Table
from spotler_pipeline.warehouse.writes import memory_limit_bytes

SAMPLE = 10

_T = TypeVar("_T")


@dataclass(frozen=True)
class Finding:
    """Outcome of one quality query: ``problems`` rows that break the rule, with a sample."""

    checked: int
    problems: int
    sample: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.problems == 0


@dataclass(frozen=True)
class Window:
    """What a write covered: the days ``start <= day < end`` of a partition column and, when
    it replaced only some items there (``items`` of column ``item_column``), those."""

    start: date
    end: date
    item_column: str | None = None
    items: tuple[str, ...] = ()

    def only(self, column: str, items: Iterable[str]) -> Window:
        """This window narrowed to ``items`` of ``column`` (say the mailings re-read)."""
        return replace(self, item_column=column, items=tuple(items))

    def where(self, column: str, alias: str | None = None) -> str:
        """SQL restricting ``column`` (of ``alias``) to the window: ``$start``/``$end``, and
        the item column to ``$items``."""
        ref = f'{alias}."{column}"' if alias else f'"{column}"'
        sql = f"{ref} >= $start AND {ref} < $end"
        if self.item_column is not None:
            item = f'{alias}."{self.item_column}"' if alias else f'"{self.item_column}"'
            sql += f" AND {item} IN (SELECT unnest($items::VARCHAR[]))"
        return sql

    @property
    def params(self) -> dict[str, Any]:
        items = {"items": list(self.items)} if self.item_column is not None else {}
        return {"start": self.start, "end": self.end, **items}


def _restrict(table: Table, window: Window | None, alias: str | None = None) -> str:
    """``table``'s rows in ``window`` as a WHERE condition ("true" for the whole table)."""
    if window is None or table.partition_column is None:
        return "true"
    return window.where(table.partition_column, alias)


#: Rows a grouping query handles at once at most: a key check over more is split into
#: slices by a hash of the key (a duplicate lands in one slice), so it stays within the
#: connection's memory limit (DuckDB's hash aggregate over a whole busy table does not).
SLICE_ROWS = 4_000_000
#: Bytes of the connection's ``memory_limit`` a slice may count on per row: a slice has at
#: most ``memory_limit / SLICE_ROW_BYTES`` rows (enough room for two 24-character keys a row).
SLICE_ROW_BYTES = 32
#: Times a sliced check that ran out of memory is tried again with twice the slices.
SLICE_RETRIES = 4


@contextmanager
def single_threaded(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Run the block's queries on one DuckDB thread, then restore the connection's threads.

    Each thread of a query builds its own hash tables, whatever the data: a reconciliation
    with a dozen joins and groupings (``contact_mailing_card_vs_history``) can need more than
    the inline checks' memory limit on two threads over a small table, and fits on one. A
    check that ran out of memory is tried once more this way before it is reported as not
    evaluated.
    """
    threads = conn.execute("SELECT current_setting('threads')").fetchone()[0]  # type: ignore[index]
    conn.execute("SET threads = 1")
    try:
        yield
    finally:
        conn.execute("SET threads = ?", [int(threads)])


def _execute(
    conn: duckdb.DuckDBPyConnection, sql: str, window: Window | None
) -> duckdb.DuckDBPyConnection:
    if window is None:
        return conn.execute(sql)
    # a check's query need not use every bound of the window (DuckDB refuses extra names)
    params = {k: v for k, v in window.params.items() if re.search(rf"\${k}\b", sql)}
    return conn.execute(sql, params)


def _count(conn: duckdb.DuckDBPyConnection, sql: str, window: Window | None) -> int:
    row = _execute(conn, sql, window).fetchone()
    return int(row[0]) if row else 0


def _finding(
    conn: duckdb.DuckDBPyConnection,
    checked_sql: str,
    problems_sql: str,
    order_by: str,
    window: Window | None,
    *,
    slices: int = 1,
    slice_key: str = "",
) -> Finding:
    """Count what ``checked_sql`` checked; run ``problems_sql`` once for the count of problem
    rows and a sample of the first :data:`SAMPLE` by ``order_by``.

    With ``slices`` > 1, ``problems_sql`` contains ``{slice}``, a condition that selects
    rows whose ``slice_key`` hashes into one slice: it runs once per slice and the counts
    and samples are merged (a rule grouping by ``slice_key`` sees each group whole).
    """
    checked = _count(conn, checked_sql, window)
    problems, sample = _smaller_slices_if_needed(
        lambda n: _problems(conn, problems_sql, order_by, window, n, slice_key),
        slices,
        SLICE_RETRIES if slice_key else 0,
    )
    return Finding(checked, problems, sample)


def _smaller_slices_if_needed(attempt: Callable[[int], _T], slices: int, retries: int) -> _T:
    """``attempt(slices)``; when it runs out of memory, again with twice the slices, up to
    ``retries`` times (then the error is raised)."""
    # Whether a slice fits also depends on how the threads' partial tables happen to fill,
    # so now and then one does not. Smaller slices cost one more scan each, only then.
    for _ in range(retries):
        try:
            return attempt(slices)
        except duckdb.OutOfMemoryException:
            slices *= 2
    return attempt(slices)


def _slice_conditions(expression: str, slices: int) -> list[str]:
    """One SQL condition per slice: the rows whose ``expression`` (a hash) falls in it."""
    if slices == 1:
        return ["true"]
    return [f"{expression} % {slices} = {i}" for i in range(slices)]


def _problems(
    conn: duckdb.DuckDBPyConnection,
    problems_sql: str,
    order_by: str,
    window: Window | None,
    slices: int,
    slice_key: str,
) -> tuple[int, list[dict[str, Any]]]:
    """The count of ``problems_sql``'s rows and the first :data:`SAMPLE` of them by
    ``order_by``, over ``slices`` slices (see :func:`_finding`)."""
    parts: list[pa.Table] = []
    problems = 0
    for condition in _slice_conditions(f"hash({slice_key})", slices):
        # The count rides along as a scalar subquery of the materialised problem rows, not
        # as ``count(*) OVER ()``: DuckDB 1.5.5's window operator fails about one query in
        # 200 on two threads ("INTERNAL Error: Attempted to access index 0 within vector of
        # size 0" in WindowLocalSourceState::Finalize), which also invalidates the database
        # (duckdb/duckdb#22846, said fixed in 1.5.4; still seen on 1.5.5 in #25713).
        found = _execute(
            conn,
            f"WITH problems AS MATERIALIZED ({problems_sql.replace('{slice}', condition)}) "
            f"SELECT *, (SELECT count(*) FROM problems) AS __problems FROM problems "
            f"ORDER BY {order_by} LIMIT {SAMPLE}",
            window,
        ).fetch_arrow_table()
        problems += found.column("__problems")[0].as_py() if found.num_rows else 0
        parts.append(found.drop_columns(["__problems"]))
    # the first rows by order_by among every slice's first rows, as the connection's own
    # values (its time zone for timestamps)
    conn.register("__problem_sample", pa.concat_tables(parts))
    try:
        cur = conn.execute(f"SELECT * FROM __problem_sample ORDER BY {order_by} LIMIT {SAMPLE}")
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    finally:
        conn.unregister("__problem_sample")
    sample = [
        {
            k: (v if isinstance(v, int | float | str | None) else str(v))
            for k, v in zip(names, row, strict=True)
        }
        for row in rows
    ]
    return problems, sample


def _slices(conn: duckdb.DuckDBPyConnection, rows: int) -> int:
    """How many slices ``rows`` rows are grouped in, given the connection's memory limit."""
    per_slice = max(100_000, min(SLICE_ROWS, memory_limit_bytes(conn) // SLICE_ROW_BYTES))
    return max(1, -(-rows // per_slice))


def duplicate_keys(
    conn: duckdb.DuckDBPyConnection, table: Table, window: Window | None = None
) -> Finding:
    """Key values that occur more than once in ``table`` (in ``window``).

    The keys' hashes are grouped first: one 8-byte number per row instead of the keys'
    strings, which takes about half the time. Only when two rows share a hash (a duplicate,
    or rarely two keys with the same hash) are the keys themselves grouped, which tells the
    two apart and samples the duplicates.
    """
    keys = ", ".join(f'"{k}"' for k in table.primary_key)
    where = _restrict(table, window)
    checked = f"SELECT count(*) FROM {table.qualified_name} WHERE {where}"
    rows = _count(conn, checked, window)
    slices = _slices(conn, rows)
    if not _repeated_hash(conn, table, keys, where, window, slices):
        return Finding(rows, 0)
    return _finding(
        conn,
        checked,
        f"SELECT {keys}, count(*) AS copies FROM {table.qualified_name} "
        f"WHERE {where} AND {{slice}} GROUP BY ALL HAVING count(*) > 1",
        f"copies DESC, {keys}",
        window,
        slices=slices,
        slice_key=keys,
    )


def _repeated_hash(
    conn: duckdb.DuckDBPyConnection,
    table: Table,
    keys: str,
    where: str,
    window: Window | None,
    slices: int,
) -> bool:
    """Whether two rows in ``where`` share the hash of ``keys``; sliced like the key check
    itself (:func:`_finding`), and with as many retries with twice the slices."""

    def repeated(slices: int) -> bool:
        return any(
            _count(
                conn,
                f"SELECT count(*) FROM (SELECT h FROM (SELECT hash({keys}) AS h "
                f"FROM {table.qualified_name} WHERE {where}) WHERE {condition} "
                "GROUP BY h HAVING count(*) > 1)",
                window,
            )
            for condition in _slice_conditions("h", slices)
        )

    return _smaller_slices_if_needed(repeated, slices, SLICE_RETRIES)


def clicks_without_link(
    conn: duckdb.DuckDBPyConnection, clicks: Table, links: Table, window: Window | None = None
) -> Finding:
    """Clicks (in ``window``) whose (mailing_id, link_id) is not a link of that mailing."""
    where = _restrict(clicks, window, "c")
    return _finding(
        conn,
        f"SELECT count(*) FROM {clicks.qualified_name} c WHERE {where}",
        f"SELECT c.mailing_id, c.link_id, count(*) AS clicks FROM {clicks.qualified_name} c "
        f"ANTI JOIN {links.qualified_name} l "
        f"ON c.mailing_id = l.mailing_id AND c.link_id = l.link_id "
        f"WHERE {where} GROUP BY ALL",
        "clicks DESC, mailing_id, link_id",
        window,
    )


def recipients_vs_sent_count(
    conn: duckdb.DuckDBPyConnection, window: Window | None = None
) -> Finding:
    """Mailings (sent in ``window``) whose recipient rows differ from their ``sent_count``.

    Only send days whose recipients have been loaded are compared, so a day that is not
    materialised yet is not reported as missing recipients.
    """
    in_window = "true" if window is None else window.where("send_day")
    loaded = f"SELECT DISTINCT send_day FROM {SCHEMA}.mailing_recipients WHERE {in_window}"
    written = (
        "true"
        if window is None or window.item_column is None
        else "m.encrypted_id IN (SELECT unnest($items::VARCHAR[]))"
    )
    return _finding(
        conn,
        f"SELECT count(*) FROM {SCHEMA}.mailings m WHERE send_day IN ({loaded}) AND {written}",
        f"""
        SELECT m.encrypted_id AS mailing_id, m.send_day, m.sent_count,
               coalesce(r.recipients, 0) AS recipients
        FROM {SCHEMA}.mailings m
        LEFT JOIN (SELECT mailing_id, count(*) AS recipients
                   FROM {SCHEMA}.mailing_recipients WHERE {in_window}
                   GROUP BY mailing_id) r
          ON r.mailing_id = m.encrypted_id
        WHERE m.send_day IN ({loaded}) AND {written}
          AND coalesce(r.recipients, 0) <> coalesce(m.sent_count, 0)
        """,
        "send_day, mailing_id",
        window,
    )


def unique_contacts_vs_statistics(
    conn: duckdb.DuckDBPyConnection,
    interactions: Table,
    statistic: str,
    relative_tolerance: float,
    absolute_tolerance: int,
    window: Window | None = None,
    also: tuple[Table, ...] = (),
) -> Finding:
    """Mailings whose distinct contacts in ``interactions`` (rows in ``window``) differ from
    the latest snapshot's ``statistic`` by more than ``max(absolute, relative * statistic)``.
    The contacts of the tables ``also`` count too: Spotler's total opens (``open_count``)
    are the contacts with an open row or a click row, since every click is also an open.

    The two are read at different moments (interactions at their load, statistics at their
    snapshot), hence the tolerance; a mailing without a snapshot is not compared.
    """
    tables = (interactions, *also)
    where = _restrict(interactions, window)
    rows = sum(
        _count(
            conn, f"SELECT count(*) FROM {t.qualified_name} WHERE {_restrict(t, window)}", window
        )
        for t in tables
    )
    contacts = " UNION ALL ".join(
        f"SELECT mailing_id, contact_encrypted_id FROM {t.qualified_name} "
        f"WHERE {_restrict(t, window)} AND {{slice}}"
        for t in tables
    )
    return _finding(
        conn,
        f"SELECT count(DISTINCT mailing_id) FROM {interactions.qualified_name} WHERE {where}",
        f"""
        SELECT s.mailing_id, s.snapshot_at, s.{statistic} AS statistic,
               i.contacts AS distinct_contacts
        FROM {SCHEMA}.mailing_stats_latest s
        JOIN (SELECT mailing_id, count(DISTINCT contact_encrypted_id) AS contacts
              FROM ({contacts})
              GROUP BY mailing_id) i
          ON i.mailing_id = s.mailing_id
        WHERE abs(i.contacts - s.{statistic}) >
              greatest({absolute_tolerance}, {relative_tolerance} * s.{statistic})
        """,
        "mailing_id",
        window,
        slices=_slices(conn, rows),
        slice_key="mailing_id",
    )


# -- campaigns, forms and the contact card ---------------------------------------------------


def campaign_clicks_without_link(
    conn: duckdb.DuckDBPyConnection, window: Window | None = None
) -> Finding:
    """Campaign clicks (in ``window``) whose (campaign_mailing_id, link_id) is not a link of
    that step."""
    where = "true" if window is None else window.where("event_day", "c")
    return _finding(
        conn,
        f"SELECT count(*) FROM {SCHEMA}.campaign_mailing_clicks c WHERE {where}",
        f"SELECT c.campaign_mailing_id, c.link_id, count(*) AS clicks "
        f"FROM {SCHEMA}.campaign_mailing_clicks c "
        f"ANTI JOIN {SCHEMA}.campaign_mailing_links l "
        f"ON c.campaign_mailing_id = l.campaign_mailing_id AND c.link_id = l.link_id "
        f"WHERE {where} GROUP BY ALL",
        "clicks DESC, campaign_mailing_id, link_id",
        window,
    )


def interactions_of_unknown_steps(
    conn: duckdb.DuckDBPyConnection, interactions: Table, window: Window | None = None
) -> Finding:
    """Campaign interactions (in ``window``) whose step (or its campaign) is not in the
    catalogue."""
    where = _restrict(interactions, window, "i")
    return _finding(
        conn,
        f"SELECT count(*) FROM {interactions.qualified_name} i WHERE {where}",
        f"SELECT i.campaign_id, i.campaign_mailing_id, count(*) AS events "
        f"FROM {interactions.qualified_name} i "
        f"ANTI JOIN {SCHEMA}.campaign_mailings m "
        f"ON m.encrypted_id = i.campaign_mailing_id AND m.campaign_id = i.campaign_id "
        f"WHERE {where} GROUP BY ALL",
        "events DESC, campaign_id, campaign_mailing_id",
        window,
    )


def rows_without_parent(
    conn: duckdb.DuckDBPyConnection,
    table: Table,
    keys: dict[str, str],
    parent: Table,
    window: Window | None = None,
) -> Finding:
    """Rows of ``table`` (in ``window``) whose item is missing from catalogue ``parent``.

    ``keys`` maps the row's columns to the parent's (e.g. ``{"mailing_id": "encrypted_id"}``).
    Such orphans mean a load from another account or a catalogue that was never loaded. The
    whole catalogue is searched: an item may have moved to another partition of it.
    """
    cols = ", ".join(f"i.{c}" for c in keys)
    match = " AND ".join(f"p.{pc} = i.{c}" for c, pc in keys.items())
    where = _restrict(table, window, "i")
    return _finding(
        conn,
        f"SELECT count(*) FROM {table.qualified_name} i WHERE {where}",
        f"SELECT {cols}, count(*) AS orphan_rows FROM {table.qualified_name} i "
        f"ANTI JOIN {parent.qualified_name} p ON {match} WHERE {where} GROUP BY ALL",
        f"orphan_rows DESC, {', '.join(keys)}",
        window,
    )


def _fetched_contacts(history: str, window: Window | None) -> str:
    """The contacts whose history was fetched (on an activity day in ``window``)."""
    where = "true" if window is None else window.where("activity_day")
    return f"SELECT DISTINCT contact_external_id FROM {SCHEMA}.{history} WHERE {where}"


def _latest_history(history: str, window: Window | None) -> str:
    """Each fetched contact's most recent history (view ``<history>_latest``); with a window,
    only the contacts fetched in it, read from the table so no other contact is ranked."""
    if window is None:
        return f"SELECT * FROM {SCHEMA}.{history}_latest"
    return (
        f"SELECT * FROM {SCHEMA}.{history} "
        f"WHERE contact_external_id IN ({_fetched_contacts(history, window)}) "
        "QUALIFY activity_day = max(activity_day) OVER (PARTITION BY contact_external_id)"
    )


def contact_mailing_card_vs_history(
    conn: duckdb.DuckDBPyConnection, window: Window | None = None
) -> Finding:
    """Disagreements between ``contact_mailing_card`` (built from the interaction tables)
    and the API's own history of the contacts fetched (latest fetch per contact; with a
    window, the contacts fetched on its activity days).

    Only mailings whose interactions are loaded are compared: a mailing of a send day not
    materialised yet is not reported as missing from the card.
    """
    return _reconcile(
        conn,
        api=f"""
            SELECT * FROM ({_latest_history("contact_mailing_history", window)})
            WHERE mailing_id IN (SELECT encrypted_id FROM {SCHEMA}.mailings
                                 WHERE send_day IN (SELECT DISTINCT send_day
                                                    FROM {SCHEMA}.mailing_recipients))
        """,
        card=mailing_card_of(_fetched_contacts("contact_mailing_history", window)),
        key=("contact_external_id", "mailing_id"),
        window=window,
    )


def contact_campaign_card_vs_history(
    conn: duckdb.DuckDBPyConnection, window: Window | None = None
) -> Finding:
    """Disagreements between ``contact_campaign_mailing_card`` and the API's campaign
    history of the contacts fetched (with a window, on its activity days), per step and
    subscription, for sends on loaded days."""
    history = "contact_campaign_mailing_history"
    return _reconcile(
        conn,
        api=f"""
            SELECT * FROM ({_latest_history(history, window)})
            WHERE sent_day IN (SELECT DISTINCT event_day
                               FROM {SCHEMA}.campaign_mailing_recipients)
        """,
        card=campaign_card_of(_fetched_contacts(history, window)),
        key=("contact_external_id", "campaign_mailing_id", "campaign_subscription_id"),
        window=window,
    )


def mailing_card_of(contacts: str) -> str:
    """The rows of view ``contact_mailing_card`` for the contacts ``contacts`` selects (by
    external id): each recipient row with opened (an open or a click row) / clicked /
    bounce as the view defines them.

    The view aggregates every contact's opens, clicks and bounces before it can be filtered
    (on 40M rows that exceeded the check connection's memory); here the interaction tables
    are narrowed to those contacts' encrypted ids first, so the cost follows the contacts
    compared. A test holds it to the view.
    """
    return f"""
        WITH r AS (SELECT contact_external_id, contact_encrypted_id, mailing_id
                   FROM {SCHEMA}.mailing_recipients
                   WHERE contact_external_id IN ({contacts})),
             enc AS (SELECT DISTINCT contact_encrypted_id FROM r),
             o AS (SELECT DISTINCT mailing_id, contact_encrypted_id FROM {SCHEMA}.mailing_opens
                   WHERE contact_encrypted_id IN (SELECT contact_encrypted_id FROM enc)),
             k AS (SELECT DISTINCT mailing_id, contact_encrypted_id FROM {SCHEMA}.mailing_clicks
                   WHERE contact_encrypted_id IN (SELECT contact_encrypted_id FROM enc)),
             b AS (SELECT mailing_id, contact_encrypted_id,
                          arg_max(bounce_type, bounce_date) AS bounce
                   FROM {SCHEMA}.mailing_bounces
                   WHERE contact_encrypted_id IN (SELECT contact_encrypted_id FROM enc)
                   GROUP BY ALL)
        SELECT r.contact_external_id, r.mailing_id,
               o.mailing_id IS NOT NULL OR k.mailing_id IS NOT NULL AS opened,
               k.mailing_id IS NOT NULL AS clicked,
               b.bounce
        FROM r
        LEFT JOIN o USING (mailing_id, contact_encrypted_id)
        LEFT JOIN k USING (mailing_id, contact_encrypted_id)
        LEFT JOIN b USING (mailing_id, contact_encrypted_id)
    """


def campaign_card_of(contacts: str) -> str:
    """The rows of view ``contact_campaign_mailing_card`` for the contacts ``contacts``
    selects, narrowed first like :func:`mailing_card_of` (by subscription)."""
    key = "campaign_mailing_id, campaign_subscription_id"
    narrowed = "campaign_subscription_id IN (SELECT campaign_subscription_id FROM subs)"
    return f"""
        WITH r AS (SELECT contact_external_id, {key}
                   FROM {SCHEMA}.campaign_mailing_recipients
                   WHERE contact_external_id IN ({contacts})),
             subs AS (SELECT DISTINCT campaign_subscription_id FROM r),
             o AS (SELECT DISTINCT {key} FROM {SCHEMA}.campaign_mailing_opens
                   WHERE {narrowed}),
             k AS (SELECT DISTINCT {key} FROM {SCHEMA}.campaign_mailing_clicks
                   WHERE {narrowed}),
             b AS (SELECT {key}, arg_max(bounce_type, bounce_date) AS bounce
                   FROM {SCHEMA}.campaign_mailing_bounces WHERE {narrowed} GROUP BY ALL)
        SELECT r.contact_external_id, r.campaign_mailing_id, r.campaign_subscription_id,
               o.campaign_mailing_id IS NOT NULL OR k.campaign_mailing_id IS NOT NULL
                   AS opened,
               k.campaign_mailing_id IS NOT NULL AS clicked, b.bounce
        FROM r
        LEFT JOIN o USING ({key})
        LEFT JOIN k USING ({key})
        LEFT JOIN b USING ({key})
    """


def _reconcile(
    conn: duckdb.DuckDBPyConnection,
    api: str,
    card: str,
    key: tuple[str, ...],
    window: Window | None,
) -> Finding:
    """Rows of the API history and the card that are missing on one side or disagree.

    The card's ``opened`` counts a click as an open (the contract's rule for total opens).
    The contract does not describe the history's ``opened`` flag, so it is compared as
    ``opened OR clicked``: the same total-opens figure whether Spotler's flag counts clicks
    or image loads only.
    """
    on = " AND ".join(f"a.{k} = c.{k}" for k in key)
    keys = ", ".join(f"coalesce(a.{k}, c.{k}) AS {k}" for k in key)
    return _finding(
        conn,
        f"SELECT count(*) FROM ({api})",
        f"""
        WITH api AS ({api}),
             card AS ({card})
        SELECT {keys},
               CASE WHEN c.{key[-1]} IS NULL THEN 'only in the API history'
                    WHEN a.{key[-1]} IS NULL THEN 'only in the interaction tables'
                    ELSE 'opened/clicked/bounce differ' END AS disagreement,
               a.opened AS api_opened, c.opened AS card_opened,
               a.clicked AS api_clicked, c.clicked AS card_clicked,
               a.bounce AS api_bounce, c.bounce AS card_bounce
        FROM api a FULL JOIN card c ON {on}
        WHERE a.{key[-1]} IS NULL OR c.{key[-1]} IS NULL
           OR (a.opened OR a.clicked) IS DISTINCT FROM c.opened
           OR a.clicked IS DISTINCT FROM c.clicked
           OR a.bounce IS DISTINCT FROM c.bounce
        """,
        "ALL",
        window,
    )


def contact_forms_vs_results(
    conn: duckdb.DuckDBPyConnection, window: Window | None = None
) -> Finding:
    """Submissions in the contacts' form histories (with a window, of the contacts fetched
    on its activity days) that disagree with ``form_results``: missing there (for loaded
    submit days), or with another time or completion."""
    api = f"""
        SELECT * FROM ({_latest_history("contact_form_history", window)})
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
        """,
        "ALL",
        window,
    )
