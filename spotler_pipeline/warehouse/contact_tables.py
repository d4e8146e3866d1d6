"""A contact's history as Spotler's per-contact endpoints report it (the "customer card").

Partitioned by activity day: the partition of a day holds the full history, as read that
day, of every contact who had an interaction or submitted a form on that day. A contact
active on several days therefore has one snapshot of their history per such day; the
``*_latest`` views keep the most recent one.
"""

from __future__ import annotations

from spotler_pipeline.warehouse.campaign_tables import CAMPAIGN_SUBSCRIPTION_ID
from spotler_pipeline.warehouse.mailing_tables import CONTACT_EXTERNAL_ID
from spotler_pipeline.warehouse.model import Column, Table

ACTIVITY_DAY = Column(
    "activity_day",
    "DATE",
    "Day of the contact's activity that made the pipeline read this history (account time zone).",
)
FETCHED_AT = Column("fetched_at", "TIMESTAMPTZ", "When the history was read from Spotler.")
OPENED = Column(
    "opened",
    "BOOLEAN",
    "The contact opened it, as Spotler's history reports (the contract does not say whether "
    "a click without loaded images counts: compare opened OR clicked with the card views' "
    "opened, which counts every click as an open).",
)
CLICKED = Column("clicked", "BOOLEAN", "The contact clicked a link in it (as Spotler reports).")
BOUNCE = Column("bounce", "VARCHAR", "HARDBOUNCE, SOFTBOUNCE or NULL when it did not bounce.")
SENT_DATE = Column("sent_date", "TIMESTAMPTZ", "When it was sent to the contact.")
SENT_DAY = Column("sent_day", "DATE", "Day it was sent, in the account's time zone.")

CONTACT_MAILING_HISTORY = Table(
    name="contact_mailing_history",
    description=(
        "One row per contact x one-off mailing the contact received (GET /contact/{id}/mailings)."
    ),
    columns=(
        ACTIVITY_DAY,
        CONTACT_EXTERNAL_ID,
        Column("mailing_id", "VARCHAR", "Spotler's encryptedId of the mailing."),
        Column("mailing_name", "VARCHAR", "Name of the mailing."),
        Column("mailing_type", "VARCHAR", "EMAIL or SMS."),
        SENT_DATE,
        SENT_DAY,
        OPENED,
        CLICKED,
        BOUNCE,
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
        Column("campaign_mailing_id", "VARCHAR", "Spotler's encryptedId of the campaign step."),
        Column("campaign_mailing_name", "VARCHAR", "Name of the campaign step."),
        Column("campaign_mailing_type", "VARCHAR", "EMAIL or SMS."),
        CAMPAIGN_SUBSCRIPTION_ID,
        SENT_DATE,
        SENT_DAY,
        OPENED,
        CLICKED,
        BOUNCE,
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
        Column("form_id", "VARCHAR", "Spotler's id of the form."),
        Column("form_name", "VARCHAR", "Name of the form."),
        Column("form_sub_type", "VARCHAR", "normal, subscribe, unSubscribe or editProfile."),
        Column("form_state", "VARCHAR", "draft, proof or final."),
        Column("form_result_id", "VARCHAR", "Spotler's id of the submission (form_results)."),
        Column("submit_date", "TIMESTAMPTZ", "When the contact submitted the form."),
        Column("submit_day", "DATE", "Day of the submission, in the account's time zone."),
        Column("completed", "BOOLEAN", "Whether the submission was completed."),
        FETCHED_AT,
    ),
    primary_key=("activity_day", "contact_external_id", "form_result_id"),
    partition_column="activity_day",
)

CONTACT_TABLES = (CONTACT_MAILING_HISTORY, CONTACT_CAMPAIGN_MAILING_HISTORY, CONTACT_FORM_HISTORY)
