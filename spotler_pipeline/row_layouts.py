"""The flat columns the API's bulk interaction rows become: their names are declared here, once.

A bulk endpoint (the recipients, opens, clicks or bounces of a mailing or of a campaign
message) answers rows such as ``{"contactIdentifier": {"externalId", "encryptedId"},
"openDate"}``. A :class:`BatchLayout` names the column each JSON leaf becomes and says which
leaves are timestamps. Both layers read these declarations:

- the client (``client/columnar.py``) decodes each page into an Arrow batch of the layout's
  :attr:`~BatchLayout.schema`, and builds its typed records (``client/models.py``) from the
  same leaves with the same conversions;
- the warehouse's interaction tables (``warehouse/mailing_tables.py``,
  ``campaign_tables.py``) take their API columns, name and type, from the layouts, and add
  what only the warehouse knows: the partition and parent-id columns, keys, and the
  descriptions readers see.

The catalogue and contact-history records (mailings, links, statistics, forms, campaigns,
histories) are declared the same way, field by field, in :mod:`spotler_pipeline.records`;
this module holds the bulk interaction rows only.

Why here, a module of its own beside both layers: the client must know nothing of DuckDB
and the warehouse nothing of HTTP, so neither may import the other; both may import plain
data. This module imports pyarrow only. (The client taking its names from the warehouse's
tables instead would tie the API decoding to DuckDB types and to columns, such as
``send_day``, that no API row has.)
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

__all__ = [
    "BOUNCE_LAYOUT",
    "BOUNCE_SCHEMA",
    "CAMPAIGN_BOUNCE_LAYOUT",
    "CAMPAIGN_BOUNCE_SCHEMA",
    "CAMPAIGN_CLICK_LAYOUT",
    "CAMPAIGN_CLICK_SCHEMA",
    "CAMPAIGN_OPEN_LAYOUT",
    "CAMPAIGN_OPEN_SCHEMA",
    "CAMPAIGN_RECIPIENT_LAYOUT",
    "CAMPAIGN_RECIPIENT_SCHEMA",
    "CLICK_LAYOUT",
    "CLICK_SCHEMA",
    "OPEN_LAYOUT",
    "OPEN_SCHEMA",
    "RECIPIENT_LAYOUT",
    "RECIPIENT_SCHEMA",
    "TIMESTAMP_TYPE",
    "BatchColumn",
    "BatchLayout",
]

#: Every timestamp, in batches and tables alike: microseconds, UTC.
TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class BatchColumn:
    """One output column and where it sits inside an API row (a path of JSON keys)."""

    name: str
    source: tuple[str, ...]
    timestamp: bool = False

    @property
    def arrow_type(self) -> pa.DataType:
        return TIMESTAMP_TYPE if self.timestamp else pa.string()


@dataclass(frozen=True)
class BatchLayout:
    """The flat columns a bulk endpoint's rows become, and the Arrow schema of them."""

    columns: tuple[BatchColumn, ...]

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.arrow_type) for c in self.columns])

    def row_type(self) -> pa.StructType:
        """The nested struct of one API row as parsed (every leaf a string)."""
        tree: dict[str, dict | None] = {}
        for column in self.columns:
            node = tree
            for key in column.source[:-1]:
                node = node.setdefault(key, {})
            node[column.source[-1]] = None
        return _struct_of(tree)


def _struct_of(tree: dict[str, dict | None]) -> pa.StructType:
    return pa.struct(
        [pa.field(k, pa.string() if v is None else _struct_of(v)) for k, v in tree.items()]
    )


CONTACT = "contactIdentifier"  # the JSON object that identifies the contact of a row

CONTACT_EXTERNAL_ID = BatchColumn("contact_external_id", (CONTACT, "externalId"))
CONTACT_ENCRYPTED_ID = BatchColumn("contact_encrypted_id", (CONTACT, "encryptedId"))
CAMPAIGN_SUBSCRIPTION_ID = BatchColumn("campaign_subscription_id", ("campaignSubscriptionId",))
SEND_DATE = BatchColumn("send_date", ("sendDate",), timestamp=True)
OPEN_DATE = BatchColumn("open_date", ("openDate",), timestamp=True)
CLICK_DATE = BatchColumn("click_date", ("clickDate",), timestamp=True)
LINK_ID = BatchColumn("link_id", ("linkId",))
BOUNCE_DATE = BatchColumn("bounce_date", ("bounceDate",), timestamp=True)
BOUNCE_TYPE = BatchColumn("bounce_type", ("type",))

_CONTACT = (CONTACT_EXTERNAL_ID, CONTACT_ENCRYPTED_ID)
_OPEN = (*_CONTACT, OPEN_DATE)
_CLICK = (*_CONTACT, CLICK_DATE, LINK_ID)
_BOUNCE = (*_CONTACT, BOUNCE_DATE, BOUNCE_TYPE)

RECIPIENT_LAYOUT = BatchLayout(_CONTACT)
OPEN_LAYOUT = BatchLayout(_OPEN)
CLICK_LAYOUT = BatchLayout(_CLICK)
BOUNCE_LAYOUT = BatchLayout(_BOUNCE)
CAMPAIGN_RECIPIENT_LAYOUT = BatchLayout((*_CONTACT, SEND_DATE, CAMPAIGN_SUBSCRIPTION_ID))
CAMPAIGN_OPEN_LAYOUT = BatchLayout((*_OPEN, CAMPAIGN_SUBSCRIPTION_ID))
CAMPAIGN_CLICK_LAYOUT = BatchLayout((*_CLICK, CAMPAIGN_SUBSCRIPTION_ID))
CAMPAIGN_BOUNCE_LAYOUT = BatchLayout((*_BOUNCE, CAMPAIGN_SUBSCRIPTION_ID))

RECIPIENT_SCHEMA = RECIPIENT_LAYOUT.schema
OPEN_SCHEMA = OPEN_LAYOUT.schema
CLICK_SCHEMA = CLICK_LAYOUT.schema
BOUNCE_SCHEMA = BOUNCE_LAYOUT.schema
CAMPAIGN_RECIPIENT_SCHEMA = CAMPAIGN_RECIPIENT_LAYOUT.schema
CAMPAIGN_OPEN_SCHEMA = CAMPAIGN_OPEN_LAYOUT.schema
CAMPAIGN_CLICK_SCHEMA = CAMPAIGN_CLICK_LAYOUT.schema
CAMPAIGN_BOUNCE_SCHEMA = CAMPAIGN_BOUNCE_LAYOUT.schema
