"""Views over the tables: the shapes analysts query most.

Table names inside a view are unqualified on purpose: DuckDB binds them in the view's own
schema, so the views work however the file is opened (see ``connection.py``).
"""

from __future__ import annotations

from spotler_pipeline.warehouse.mailing_tables import MAILING_STATS_SNAPSHOTS
from spotler_pipeline.warehouse.model import SCHEMA

MAILING_STATS_LATEST = f"""
CREATE OR REPLACE VIEW {SCHEMA}.mailing_stats_latest AS
SELECT *,
       CAST(conversion_value_cents * 0.01 AS DECIMAL(20, 2))
           AS conversion_value_eur
FROM mailing_stats_snapshots
QUALIFY row_number() OVER (PARTITION BY mailing_id ORDER BY snapshot_at DESC) = 1
"""

#: name -> CREATE VIEW statement, in creation order (later views may use earlier ones).
VIEWS: dict[str, str] = {
    "mailing_stats_latest": MAILING_STATS_LATEST,
}

# -- campaigns, forms and the contact card ---------------------------------------------------

CAMPAIGN_MAILING_DAILY = f"""
CREATE OR REPLACE VIEW {SCHEMA}.campaign_mailing_daily AS
WITH events AS (
    SELECT event_day, campaign_id, campaign_mailing_id, contact_encrypted_id, 'send' AS kind
    FROM campaign_mailing_recipients
    UNION ALL
    SELECT event_day, campaign_id, campaign_mailing_id, contact_encrypted_id, 'open'
    FROM campaign_mailing_opens
    UNION ALL
    SELECT event_day, campaign_id, campaign_mailing_id, contact_encrypted_id, 'click'
    FROM campaign_mailing_clicks
    UNION ALL
    SELECT event_day, campaign_id, campaign_mailing_id, contact_encrypted_id, 'bounce'
    FROM campaign_mailing_bounces
)
SELECT e.event_day, e.campaign_id, c.name AS campaign_name, e.campaign_mailing_id,
       m.name AS campaign_mailing_name, m.position,
       count(*) FILTER (WHERE kind = 'send') AS sends,
       count(*) FILTER (WHERE kind = 'open') AS rendered_opens,
       count(DISTINCT contact_encrypted_id) FILTER (WHERE kind IN ('open', 'click'))
           AS unique_openers,
       count(DISTINCT contact_encrypted_id) FILTER (WHERE kind = 'open')
           AS unique_rendered_openers,
       count(*) FILTER (WHERE kind = 'click') AS clicks,
       count(DISTINCT contact_encrypted_id) FILTER (WHERE kind = 'click') AS unique_clickers,
       count(*) FILTER (WHERE kind = 'bounce') AS bounces
FROM events e
LEFT JOIN campaigns c ON c.encrypted_id = e.campaign_id
LEFT JOIN campaign_mailings m ON m.encrypted_id = e.campaign_mailing_id
GROUP BY ALL
"""

FORM_RESPONSE_SUMMARY = f"""
CREATE OR REPLACE VIEW {SCHEMA}.form_response_summary AS
-- real responses only: test submissions are kept in form_results but not counted here
SELECT r.form_id, f.name AS form_name, f.form_sub_type, r.submit_day,
       count(*) AS submissions,
       count(*) FILTER (WHERE r.completed) AS completed,
       count(*) FILTER (WHERE r.completed) / count(*) AS completion_rate
FROM form_results r
LEFT JOIN forms f ON f.id = r.form_id
WHERE r.test_result IS DISTINCT FROM true
GROUP BY ALL
"""

FORM_ANSWER_SUMMARY = f"""
CREATE OR REPLACE VIEW {SCHEMA}.form_answer_summary AS
-- one row per form x question x answer given (each choice of a multiple-choice answer
-- counts once); test submissions excluded
WITH answers AS (
    SELECT a.form_id, a.rank, a.field_id, a.description,
           unnest(CASE WHEN a.answer_type = 'list'
                       THEN from_json(a.answer, '["VARCHAR"]')
                       ELSE [a.answer_text] END) AS answer_text
    FROM form_answers a
    JOIN form_results r USING (form_id, form_result_id)
    WHERE r.test_result IS DISTINCT FROM true AND a.answer_type <> 'null'
)
SELECT a.form_id, f.name AS form_name, a.rank, a.field_id, a.description, a.answer_text,
       count(*) AS answers
FROM answers a
LEFT JOIN forms f ON f.id = a.form_id
GROUP BY ALL
"""


def _latest(table: str) -> str:
    return f"""
CREATE OR REPLACE VIEW {SCHEMA}.{table}_latest AS
-- each contact's most recently fetched history
SELECT *
FROM {table}
QUALIFY activity_day = max(activity_day) OVER (PARTITION BY contact_external_id)
"""


CONTACT_MAILING_CARD = f"""
CREATE OR REPLACE VIEW {SCHEMA}.contact_mailing_card AS
-- every contact's one-off mailings, built from the interaction tables (no API calls)
WITH opens AS (
    SELECT mailing_id, contact_encrypted_id, count(*) AS opens, min(open_date) AS first_open_date
    FROM mailing_opens GROUP BY ALL
), clicks AS (
    SELECT mailing_id, contact_encrypted_id, count(*) AS clicks,
           min(click_date) AS first_click_date
    FROM mailing_clicks GROUP BY ALL
), bounces AS (
    SELECT mailing_id, contact_encrypted_id, arg_max(bounce_type, bounce_date) AS bounce
    FROM mailing_bounces GROUP BY ALL
)
SELECT r.contact_external_id, r.contact_encrypted_id, r.mailing_id,
       m.name AS mailing_name, m.type AS mailing_type,
       m.scheduled_start_date AS sent_date, r.send_day AS sent_day,
       o.opens IS NOT NULL OR c.clicks IS NOT NULL AS opened,
       o.opens IS NOT NULL AS opened_rendered, c.clicks IS NOT NULL AS clicked, b.bounce,
       coalesce(o.opens, 0) AS rendered_opens,
       least(o.first_open_date, c.first_click_date) AS first_open_date,
       o.first_open_date AS first_rendered_open_date,
       coalesce(c.clicks, 0) AS clicks, c.first_click_date
FROM mailing_recipients r
LEFT JOIN mailings m ON m.encrypted_id = r.mailing_id
LEFT JOIN opens o USING (mailing_id, contact_encrypted_id)
LEFT JOIN clicks c USING (mailing_id, contact_encrypted_id)
LEFT JOIN bounces b USING (mailing_id, contact_encrypted_id)
"""

CONTACT_CAMPAIGN_MAILING_CARD = f"""
CREATE OR REPLACE VIEW {SCHEMA}.contact_campaign_mailing_card AS
-- every contact's campaign messages, one row per step x subscription, built from the
-- interaction tables (no API calls)
WITH opens AS (
    SELECT campaign_mailing_id, campaign_subscription_id, count(*) AS opens,
           min(open_date) AS first_open_date
    FROM campaign_mailing_opens GROUP BY ALL
), clicks AS (
    SELECT campaign_mailing_id, campaign_subscription_id, count(*) AS clicks,
           min(click_date) AS first_click_date
    FROM campaign_mailing_clicks GROUP BY ALL
), bounces AS (
    SELECT campaign_mailing_id, campaign_subscription_id,
           arg_max(bounce_type, bounce_date) AS bounce
    FROM campaign_mailing_bounces GROUP BY ALL
)
SELECT r.contact_external_id, r.contact_encrypted_id, r.campaign_id,
       cp.name AS campaign_name, r.campaign_mailing_id,
       m.name AS campaign_mailing_name, m.type AS campaign_mailing_type,
       r.campaign_subscription_id, r.send_date AS sent_date, r.event_day AS sent_day,
       o.opens IS NOT NULL OR c.clicks IS NOT NULL AS opened,
       o.opens IS NOT NULL AS opened_rendered, c.clicks IS NOT NULL AS clicked, b.bounce,
       coalesce(o.opens, 0) AS rendered_opens,
       least(o.first_open_date, c.first_click_date) AS first_open_date,
       o.first_open_date AS first_rendered_open_date,
       coalesce(c.clicks, 0) AS clicks, c.first_click_date
FROM campaign_mailing_recipients r
LEFT JOIN campaigns cp ON cp.encrypted_id = r.campaign_id
LEFT JOIN campaign_mailings m ON m.encrypted_id = r.campaign_mailing_id
LEFT JOIN opens o USING (campaign_mailing_id, campaign_subscription_id)
LEFT JOIN clicks c USING (campaign_mailing_id, campaign_subscription_id)
LEFT JOIN bounces b USING (campaign_mailing_id, campaign_subscription_id)
"""

CONTACT_FORM_CARD = f"""
CREATE OR REPLACE VIEW {SCHEMA}.contact_form_card AS
-- a contact's form submissions. Spotler's form results do not name the contact, so who
-- submitted what comes from the contacts' fetched form histories; the submission itself
-- (test flag, answers) from the form tables.
SELECT h.contact_external_id, h.form_id, coalesce(f.name, h.form_name) AS form_name,
       coalesce(f.form_sub_type, h.form_sub_type) AS form_sub_type, h.form_result_id,
       h.submit_date, h.submit_day, h.completed, r.test_result, r.answer_count,
       r.form_result_id IS NOT NULL AS result_loaded
FROM contact_form_history_latest h
LEFT JOIN forms f ON f.id = h.form_id
LEFT JOIN form_results r
  ON r.form_id = h.form_id AND r.form_result_id = h.form_result_id
"""

VIEWS.update(
    {
        "campaign_mailing_daily": CAMPAIGN_MAILING_DAILY,
        "form_response_summary": FORM_RESPONSE_SUMMARY,
        "form_answer_summary": FORM_ANSWER_SUMMARY,
        "contact_mailing_history_latest": _latest("contact_mailing_history"),
        "contact_campaign_mailing_history_latest": _latest("contact_campaign_mailing_history"),
        "contact_form_history_latest": _latest("contact_form_history"),
        "contact_mailing_card": CONTACT_MAILING_CARD,
        "contact_campaign_mailing_card": CONTACT_CAMPAIGN_MAILING_CARD,
        "contact_form_card": CONTACT_FORM_CARD,
    }
)

_CARD_COLUMNS = {
    "opened": (
        "Opened, as Spotler counts opens (openCount): the images were loaded or a link was "
        "clicked; every click also counts as an open."
    ),
    "opened_rendered": (
        "The images were loaded (a rendered open, as openRenderedCount counts them): at least "
        "one row in the opens table."
    ),
    "rendered_opens": "Rendered opens (image loads): the rows in the opens table.",
    "first_open_date": "First open of either kind: image load or click.",
    "first_rendered_open_date": "First image load.",
}

#: What the view columns that are easy to misread mean. A DuckDB file shows them as column
#: comments (``duckdb_columns()``); a DuckLake catalog keeps no comments on view columns.
VIEW_COLUMN_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "mailing_stats_latest": {
        **{c.name: c.description for c in MAILING_STATS_SNAPSHOTS.columns},
        "conversion_value_eur": (
            "Total conversion value in euros (conversion_value_cents / 100, exact); NULL when "
            "the account has no eCommerce."
        ),
    },
    "campaign_mailing_daily": {
        "rendered_opens": "Rendered opens (image loads) that day: rows of campaign_mailing_opens.",
        "unique_openers": (
            "Contacts who opened that day as Spotler counts opens: an image load or a click "
            "(every click also counts as an open)."
        ),
        "unique_rendered_openers": "Contacts who loaded the images that day.",
    },
    "contact_mailing_card": _CARD_COLUMNS,
    "contact_campaign_mailing_card": _CARD_COLUMNS,
}
