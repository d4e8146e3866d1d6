"""Tables of automated campaigns: campaigns, their triggers, message steps, links, interactions.

The campaign catalogue (campaigns, triggers, steps, links) is not partitioned: it is read
whole every day and merged by presence (see :func:`~spotler_pipeline.warehouse.writes.
merge_presence`), so a campaign or step that Spotler no longer lists stays in the table with
``present = false`` instead of vanishing or posing as current. Interactions are partitioned
by the day the event happened, because a campaign sends every day, not on one send day.
"""

from __future__ import annotations

from spotler_pipeline.warehouse.mailing_tables import CONTACT_ENCRYPTED_ID, CONTACT_EXTERNAL_ID
from spotler_pipeline.warehouse.model import PRESENT, Column, Table

FIRST_SEEN_AT = Column("first_seen_at", "TIMESTAMPTZ", "When the pipeline first saw this item.")
LAST_SEEN_AT = Column(
    "last_seen_at", "TIMESTAMPTZ", "When the pipeline last saw this item in Spotler's answer."
)
PRESENCE_COLUMNS = (PRESENT, FIRST_SEEN_AT, LAST_SEEN_AT)

CAMPAIGN_ID = Column("campaign_id", "VARCHAR", "Spotler's encryptedId of the campaign.")
CAMPAIGN_MAILING_ID = Column(
    "campaign_mailing_id", "VARCHAR", "Spotler's encryptedId of the campaign message step."
)
CAMPAIGN_SUBSCRIPTION_ID = Column(
    "campaign_subscription_id",
    "VARCHAR",
    "One pass of one contact through the campaign; a contact who enters the campaign twice "
    "has two subscriptions.",
)
EVENT_DAY = Column(
    "event_day",
    "DATE",
    "Day the event happened in the account's time zone; the partition key.",
)

CAMPAIGNS = Table(
    name="campaigns",
    description="One row per automated campaign (triggered flow), current or gone.",
    columns=(
        Column("encrypted_id", "VARCHAR", "Spotler's id of the campaign (encryptedId)."),
        Column("name", "VARCHAR", "Name of the campaign."),
        Column("active", "BOOLEAN", "Whether the campaign is switched on in Spotler."),
        Column(
            "trigger_names",
            "VARCHAR[]",
            "Names of the events that enter a contact into the campaign "
            "(details in campaign_triggers).",
        ),
        Column("step_count", "INTEGER", "Number of message steps Spotler lists for it."),
        *PRESENCE_COLUMNS,
    ),
    primary_key=("encrypted_id",),
)

CAMPAIGN_TRIGGERS = Table(
    name="campaign_triggers",
    description="One row per trigger of a campaign: an event that starts a subscription.",
    columns=(
        CAMPAIGN_ID,
        Column("trigger_id", "VARCHAR", "Spotler's encryptedId of the trigger."),
        Column("name", "VARCHAR", "Name of the trigger."),
        *PRESENCE_COLUMNS,
    ),
    primary_key=("campaign_id", "trigger_id"),
)

CAMPAIGN_MAILINGS = Table(
    name="campaign_mailings",
    description="One row per message step of a campaign, with its content details.",
    columns=(
        Column("encrypted_id", "VARCHAR", "Spotler's id of the step (encryptedId)."),
        CAMPAIGN_ID,
        Column("position", "INTEGER", "Order of the step in the campaign (0 = first)."),
        Column("name", "VARCHAR", "Name of the step."),
        Column("type", "VARCHAR", "EMAIL or SMS."),
        Column("message_name", "VARCHAR", "Name of the message (content) used."),
        Column("message_author", "VARCHAR", "Author of the message."),
        Column("subject", "VARCHAR", "Subject line; NULL for SMS."),
        Column("from_name", "VARCHAR", "Sender name shown to recipients."),
        Column("from_email", "VARCHAR", "Sender address shown to recipients."),
        Column("link_count", "INTEGER", "Number of trackable links in the message."),
        *PRESENCE_COLUMNS,
    ),
    primary_key=("encrypted_id",),
)

CAMPAIGN_MAILING_LINKS = Table(
    name="campaign_mailing_links",
    description="One row per trackable link of a campaign message; clicks refer to link_id.",
    columns=(
        CAMPAIGN_MAILING_ID,
        Column("link_id", "VARCHAR", "Id of the link within Spotler (clicks.linkId)."),
        Column("name", "VARCHAR", "Name of the link."),
        Column("url", "VARCHAR", "Target URL."),
        Column("code", "VARCHAR", "Tracking code of the link."),
        Column("type", "VARCHAR", "Link type (e.g. webshop, unsubscribe, conversion)."),
        *PRESENCE_COLUMNS,
    ),
    primary_key=("campaign_mailing_id", "link_id"),
)


def _interaction(
    name: str, description: str, extra: tuple[Column, ...], key: tuple[str, ...]
) -> Table:
    return Table(
        name=name,
        description=description,
        columns=(
            EVENT_DAY,
            CAMPAIGN_ID,
            CAMPAIGN_MAILING_ID,
            CAMPAIGN_SUBSCRIPTION_ID,
            CONTACT_EXTERNAL_ID,
            CONTACT_ENCRYPTED_ID,
            *extra,
        ),
        primary_key=("campaign_mailing_id", "campaign_subscription_id", *key),
        partition_column="event_day",
    )


CAMPAIGN_MAILING_RECIPIENTS = _interaction(
    "campaign_mailing_recipients",
    "One row per send of a campaign message to one subscription.",
    (Column("send_date", "TIMESTAMPTZ", "When the message was sent."),),
    (),
)
CAMPAIGN_MAILING_OPENS = _interaction(
    "campaign_mailing_opens",
    "One row per open of a campaign message.",
    (Column("open_date", "TIMESTAMPTZ", "When the message was opened."),),
    ("open_date",),
)
CAMPAIGN_MAILING_CLICKS = _interaction(
    "campaign_mailing_clicks",
    "One row per click on a link of a campaign message.",
    (
        Column("click_date", "TIMESTAMPTZ", "When the link was clicked."),
        Column("link_id", "VARCHAR", "The clicked link (campaign_mailing_links.link_id)."),
    ),
    ("click_date", "link_id"),
)
CAMPAIGN_MAILING_BOUNCES = _interaction(
    "campaign_mailing_bounces",
    "One row per bounce of a campaign message.",
    (
        Column("bounce_date", "TIMESTAMPTZ", "When the bounce was registered."),
        Column("bounce_type", "VARCHAR", "HARDBOUNCE or SOFTBOUNCE."),
    ),
    ("bounce_date",),
)

#: Event-time column of each interaction table (what ``event_day`` is the local day of).
EVENT_TIME_COLUMN = {
    "campaign_mailing_recipients": "send_date",
    "campaign_mailing_opens": "open_date",
    "campaign_mailing_clicks": "click_date",
    "campaign_mailing_bounces": "bounce_date",
}

CAMPAIGN_CATALOG_TABLES = (
    CAMPAIGNS,
    CAMPAIGN_TRIGGERS,
    CAMPAIGN_MAILINGS,
    CAMPAIGN_MAILING_LINKS,
)
CAMPAIGN_INTERACTION_TABLES = (
    CAMPAIGN_MAILING_RECIPIENTS,
    CAMPAIGN_MAILING_OPENS,
    CAMPAIGN_MAILING_CLICKS,
    CAMPAIGN_MAILING_BOUNCES,
)
CAMPAIGN_TABLES = (*CAMPAIGN_CATALOG_TABLES, *CAMPAIGN_INTERACTION_TABLES)
