"""Tables of one-off mailings: the mailings, their links, statistics snapshots, interactions."""

from __future__ import annotations

from spotler_pipeline import records
from spotler_pipeline import row_layouts as api
from spotler_pipeline.warehouse.model import (
    PRESENT,
    Column,
    Table,
    api_column,
    interaction_table,
    record_columns,
)

SEND_DAY = Column(
    "send_day",
    "DATE",
    "Day the mailing was sent (scheduledStartDate) in the account's time zone.",
)
MAILING_ID = Column("mailing_id", "VARCHAR", "Spotler's encryptedId of the mailing.")

#: What the columns of the API's interaction rows (named and typed in ``row_layouts``) mean
#: in the tables of one-off mailings.
INTERACTION_DESCRIPTIONS = {
    api.CONTACT_EXTERNAL_ID.name: "The contact's external id (often an e-mail address).",
    api.CONTACT_ENCRYPTED_ID.name: "Spotler's encrypted contact id.",
    api.OPEN_DATE.name: "When the contact's mail client loaded the mailing's images.",
    api.CLICK_DATE.name: "When the link was clicked.",
    api.LINK_ID.name: "The clicked link (mailing_links.link_id).",
    api.BOUNCE_DATE.name: "When the bounce was registered.",
    api.BOUNCE_TYPE.name: "HARDBOUNCE or SOFTBOUNCE.",
}
CONTACT_EXTERNAL_ID, CONTACT_ENCRYPTED_ID = (
    api_column(c, INTERACTION_DESCRIPTIONS[c.name]) for c in api.RECIPIENT_LAYOUT.columns
)

MAILINGS = Table(
    name="mailings",
    description="One row per one-off mailing (newsletter or SMS), with its static details.",
    columns=(
        SEND_DAY,
        *record_columns(records.MailingDetails),
        Column("link_count", "INTEGER", "Number of trackable links in the mailing."),
        PRESENT,
    ),
    primary_key=("encrypted_id",),
    partition_column="send_day",
)

MAILING_LINKS = Table(
    name="mailing_links",
    description="One row per trackable link of a mailing; clicks refer to these by link_id.",
    columns=(
        SEND_DAY,
        MAILING_ID,
        *record_columns(records.Link),
    ),
    primary_key=("mailing_id", "link_id"),
    partition_column="send_day",
)

MAILING_STATS_SNAPSHOTS = Table(
    name="mailing_stats_snapshots",
    description=(
        "One row per mailing per snapshot day: Spotler's statistics as they stood at "
        "snapshot_at. Statistics keep maturing for weeks after a send; the series of "
        "snapshots shows that curve."
    ),
    columns=(
        Column(
            "snapshot_day",
            "DATE",
            "Day of the snapshot in the account's time zone.",
        ),
        Column("snapshot_at", "TIMESTAMPTZ", "When the statistics were read from Spotler."),
        MAILING_ID,
        SEND_DAY,
        Column(
            "days_since_send", "INTEGER", "Whole days between the send day and the snapshot day."
        ),
        *record_columns(records.MailingStatistics),
    ),
    primary_key=("mailing_id", "snapshot_day"),
    partition_column="snapshot_day",
)


def _interaction(
    name: str, description: str, layout: api.BatchLayout, key: tuple[str, ...]
) -> Table:
    return interaction_table(
        name,
        description,
        (SEND_DAY, MAILING_ID),
        layout,
        INTERACTION_DESCRIPTIONS,
        (MAILING_ID.name, CONTACT_ENCRYPTED_ID.name, *key),
    )


MAILING_RECIPIENTS = _interaction(
    "mailing_recipients", "One row per contact a mailing was sent to.", api.RECIPIENT_LAYOUT, ()
)
MAILING_OPENS = _interaction(
    "mailing_opens",
    "One row per rendered open of a mailing (the images loaded); a contact who opens three "
    "times has three rows. A contact who clicked without loading the images has no row here "
    "yet counts as opened (every click is also an open): see contact_mailing_card.opened.",
    api.OPEN_LAYOUT,
    (api.OPEN_DATE.name,),
)
MAILING_CLICKS = _interaction(
    "mailing_clicks",
    "One row per click on a link of a mailing.",
    api.CLICK_LAYOUT,
    (api.CLICK_DATE.name, api.LINK_ID.name),
)
MAILING_BOUNCES = _interaction(
    "mailing_bounces",
    "One row per bounce of a mailing.",
    api.BOUNCE_LAYOUT,
    (api.BOUNCE_DATE.name,),
)

MAILING_INTERACTION_TABLES = (MAILING_RECIPIENTS, MAILING_OPENS, MAILING_CLICKS, MAILING_BOUNCES)
MAILING_TABLES = (MAILINGS, MAILING_LINKS, MAILING_STATS_SNAPSHOTS, *MAILING_INTERACTION_TABLES)
