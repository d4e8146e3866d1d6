"""Tables of one-off mailings: the mailings, their links, statistics snapshots, interactions."""

from __future__ import annotations

from spotler_pipeline import row_layouts as api
from spotler_pipeline.warehouse.model import PRESENT, Column, Table, api_column, interaction_table

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
        Column("encrypted_id", "VARCHAR", "Spotler's id of the mailing (encryptedId)."),
        Column("name", "VARCHAR", "Internal name of the mailing."),
        Column("type", "VARCHAR", "EMAIL or SMS."),
        Column("scheduled_start_date", "TIMESTAMPTZ", "When the send started."),
        Column("archive_link", "VARCHAR", "Public web version of the mailing."),
        Column("sent_count", "BIGINT", "Number of recipients the mailing was sent to."),
        Column("sender", "VARCHAR", "The marketer who sent it."),
        Column("target_group", "VARCHAR", "Target group the mailing was sent to."),
        Column("message_name", "VARCHAR", "Name of the message (content) used."),
        Column("message_author", "VARCHAR", "Author of the message."),
        Column("subject", "VARCHAR", "Subject line; NULL for SMS."),
        Column("from_name", "VARCHAR", "Sender name shown to recipients."),
        Column("from_email", "VARCHAR", "Sender address shown to recipients."),
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
        Column("link_id", "VARCHAR", "Id of the link within Spotler (clicks.linkId)."),
        Column("name", "VARCHAR", "Name of the link."),
        Column("url", "VARCHAR", "Target URL."),
        Column("code", "VARCHAR", "Tracking code of the link."),
        Column("type", "VARCHAR", "Link type (e.g. webshop, unsubscribe, conversion, facebook)."),
    ),
    primary_key=("mailing_id", "link_id"),
    partition_column="send_day",
)

#: Money as Spotler reports it: an exact count of euro cents (``conversionValue``, int64).
CONVERSION_VALUE_CENTS = Column(
    "conversion_value_cents",
    "BIGINT",
    "Total conversion value in euro cents, as Spotler reports it (conversionValue); NULL when "
    "the account has no eCommerce.",
)

STATISTIC_COLUMNS: tuple[Column, ...] = (
    Column("sent_count", "BIGINT", "Messages sent."),
    Column("accepted_count", "BIGINT", "Messages accepted by the receiving servers."),
    Column(
        "open_count",
        "BIGINT",
        "Unique opens, total (openCount): contacts who loaded the images or clicked a link; "
        "every click also counts as an open.",
    ),
    Column(
        "open_rendered_count",
        "BIGINT",
        "Unique rendered opens (openRenderedCount): contacts who loaded the images, the "
        "contacts of mailing_opens.",
    ),
    Column("click_count", "BIGINT", "Clicks (unique clickers as Spotler counts them)."),
    Column("hardbounce_count", "BIGINT", "Hard bounces."),
    Column("softbounce_count", "BIGINT", "Soft bounces."),
    Column("not_retained_after_bounce_count", "BIGINT", "Contacts removed after bouncing."),
    Column("conversion_click_count", "BIGINT", "Clicks on conversion links."),
    Column("unsubscribe_count", "BIGINT", "Unsubscribes from this mailing."),
    Column("to_webshop_count", "BIGINT", "Clicks through to the webshop; NULL without eCommerce."),
    Column(
        "shoppingcart_created_count", "BIGINT", "Shopping carts created; NULL without eCommerce."
    ),
    Column(
        "shoppingcart_converted_count",
        "BIGINT",
        "Shopping carts converted to orders; NULL without eCommerce.",
    ),
    CONVERSION_VALUE_CENTS,
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
        *STATISTIC_COLUMNS,
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
