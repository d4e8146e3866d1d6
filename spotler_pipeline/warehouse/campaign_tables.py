"""Tables of automated campaigns: campaigns, their triggers, message steps, links, interactions.

The campaign catalogue (campaigns, triggers, steps, links) is not partitioned: it is read
whole every day and merged by presence (see :func:`~spotler_pipeline.warehouse.writes.
merge_presence`), so a campaign or step that Spotler no longer lists stays in the table with
``present = false`` instead of vanishing or posing as current. Interactions are partitioned
by the day the event happened, because a campaign sends every day, not on one send day.
"""

from __future__ import annotations

from spotler_pipeline import records
from spotler_pipeline import row_layouts as api
from spotler_pipeline.warehouse import mailing_tables
from spotler_pipeline.warehouse.model import (
    PRESENT,
    Column,
    Table,
    api_column,
    interaction_table,
    record_column,
    record_columns,
)

FIRST_SEEN_AT = Column("first_seen_at", "TIMESTAMPTZ", "When the pipeline first saw this item.")
LAST_SEEN_AT = Column(
    "last_seen_at", "TIMESTAMPTZ", "When the pipeline last saw this item in Spotler's answer."
)
PRESENCE_COLUMNS = (PRESENT, FIRST_SEEN_AT, LAST_SEEN_AT)

CAMPAIGN_ID = Column("campaign_id", "VARCHAR", "Spotler's encryptedId of the campaign.")
CAMPAIGN_MAILING_ID = Column(
    "campaign_mailing_id", "VARCHAR", "Spotler's encryptedId of the campaign message step."
)

#: What the columns of the API's interaction rows (named and typed in ``row_layouts``) mean
#: in the tables of campaign messages.
INTERACTION_DESCRIPTIONS = {
    **mailing_tables.INTERACTION_DESCRIPTIONS,
    api.CAMPAIGN_SUBSCRIPTION_ID.name: record_column(
        records.CampaignMailingHistory, api.CAMPAIGN_SUBSCRIPTION_ID.name
    ).description,
    api.SEND_DATE.name: "When the message was sent.",
    api.OPEN_DATE.name: "When the contact's mail client loaded the message's images.",
    api.LINK_ID.name: "The clicked link (campaign_mailing_links.link_id).",
}
CAMPAIGN_SUBSCRIPTION_ID = api_column(
    api.CAMPAIGN_SUBSCRIPTION_ID, INTERACTION_DESCRIPTIONS[api.CAMPAIGN_SUBSCRIPTION_ID.name]
)
EVENT_DAY = Column(
    "event_day",
    "DATE",
    "Day the event happened in the account's time zone.",
)

CAMPAIGNS = Table(
    name="campaigns",
    description="One row per automated campaign (triggered flow), current or gone.",
    columns=(
        *record_columns(records.Campaign),
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
        *record_columns(records.Trigger),
        *PRESENCE_COLUMNS,
    ),
    primary_key=("campaign_id", "trigger_id"),
)

CAMPAIGN_MAILINGS = Table(
    name="campaign_mailings",
    description="One row per message step of a campaign, with its content details.",
    columns=(
        *record_columns(
            records.CampaignMailingDetails,
            after={
                "encrypted_id": (
                    CAMPAIGN_ID,
                    Column("position", "INTEGER", "Order of the step in the campaign (0 = first)."),
                )
            },
        ),
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
        *record_columns(
            records.Link, described={"type": "Link type (e.g. webshop, unsubscribe, conversion)."}
        ),
        *PRESENCE_COLUMNS,
    ),
    primary_key=("campaign_mailing_id", "link_id"),
)


def _interaction(
    name: str, description: str, layout: api.BatchLayout, key: tuple[str, ...]
) -> Table:
    return interaction_table(
        name,
        description,
        (EVENT_DAY, CAMPAIGN_ID, CAMPAIGN_MAILING_ID, CAMPAIGN_SUBSCRIPTION_ID),
        layout,
        INTERACTION_DESCRIPTIONS,
        (CAMPAIGN_MAILING_ID.name, CAMPAIGN_SUBSCRIPTION_ID.name, *key),
    )


CAMPAIGN_MAILING_RECIPIENTS = _interaction(
    "campaign_mailing_recipients",
    "One row per send of a campaign message to one subscription.",
    api.CAMPAIGN_RECIPIENT_LAYOUT,
    (),
)
CAMPAIGN_MAILING_OPENS = _interaction(
    "campaign_mailing_opens",
    "One row per rendered open of a campaign message (the images loaded). A contact who "
    "clicked without loading the images has no row here yet counts as opened (every click is "
    "also an open): see contact_campaign_mailing_card.opened.",
    api.CAMPAIGN_OPEN_LAYOUT,
    (api.OPEN_DATE.name,),
)
CAMPAIGN_MAILING_CLICKS = _interaction(
    "campaign_mailing_clicks",
    "One row per click on a link of a campaign message.",
    api.CAMPAIGN_CLICK_LAYOUT,
    (api.CLICK_DATE.name, api.LINK_ID.name),
)
CAMPAIGN_MAILING_BOUNCES = _interaction(
    "campaign_mailing_bounces",
    "One row per bounce of a campaign message.",
    api.CAMPAIGN_BOUNCE_LAYOUT,
    (api.BOUNCE_DATE.name,),
)

#: Event-time column of each interaction table (what ``event_day`` is the local day of).
EVENT_TIME_COLUMN = {
    CAMPAIGN_MAILING_RECIPIENTS.name: api.SEND_DATE.name,
    CAMPAIGN_MAILING_OPENS.name: api.OPEN_DATE.name,
    CAMPAIGN_MAILING_CLICKS.name: api.CLICK_DATE.name,
    CAMPAIGN_MAILING_BOUNCES.name: api.BOUNCE_DATE.name,
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
