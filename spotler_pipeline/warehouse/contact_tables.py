"""A contact's history as Spotler's per-contact endpoints report it (the "customer card").

Partitioned by activity day: the partition of a day holds the full history, as read that
day, of every contact who had an interaction or submitted a form on that day. A contact
active on several days therefore has one snapshot of their history per such day; the
``*_latest`` views keep the most recent one.
"""

from __future__ import annotations

from spotler_pipeline import records
from spotler_pipeline.warehouse.mailing_tables import CONTACT_EXTERNAL_ID
from spotler_pipeline.warehouse.model import Column, Table, record_columns

ACTIVITY_DAY = Column(
    "activity_day",
    "DATE",
    "Day of the contact's activity that made the pipeline read this history (account time zone).",
)
FETCHED_AT = Column("fetched_at", "TIMESTAMPTZ", "When the history was read from Spotler.")
SENT_DAY = Column("sent_day", "DATE", "Day it was sent, in the account's time zone.")
SUBMIT_DAY = Column("submit_day", "DATE", "Day of the submission, in the account's time zone.")

CONTACT_MAILING_HISTORY = Table(
    name="contact_mailing_history",
    description=(
        "One row per contact x one-off mailing the contact received (GET /contact/{id}/mailings)."
    ),
    columns=(
        ACTIVITY_DAY,
        CONTACT_EXTERNAL_ID,
        *record_columns(records.MailingHistory, after={"sent_date": (SENT_DAY,)}),
        FETCHED_AT,
    ),
    primary_key=("activity_day", "contact_external_id", "mailing_id"),
    partition_column="activity_day",
)

CONTACT_CAMPAIGN_MAILING_HISTORY = Table(
    name="contact_campaign_mailing_history",
    description=(
        "One row per contact x campaign message x subscription the contact received "
        "(GET /contact/{id}/campaign-mailings)."
    ),
    columns=(
        ACTIVITY_DAY,
        CONTACT_EXTERNAL_ID,
        *record_columns(records.CampaignMailingHistory, after={"sent_date": (SENT_DAY,)}),
        FETCHED_AT,
    ),
    primary_key=(
        "activity_day",
        "contact_external_id",
        "campaign_mailing_id",
        "campaign_subscription_id",
    ),
    partition_column="activity_day",
)

CONTACT_FORM_HISTORY = Table(
    name="contact_form_history",
    description=(
        "One row per contact x form submission of that contact (GET /contact/{id}/forms)."
    ),
    columns=(
        ACTIVITY_DAY,
        CONTACT_EXTERNAL_ID,
        *record_columns(records.FormHistory, after={"submit_date": (SUBMIT_DAY,)}),
        FETCHED_AT,
    ),
    primary_key=("activity_day", "contact_external_id", "form_result_id"),
    partition_column="activity_day",
)

CONTACT_TABLES = (CONTACT_MAILING_HISTORY, CONTACT_CAMPAIGN_MAILING_HISTORY, CONTACT_FORM_HISTORY)
