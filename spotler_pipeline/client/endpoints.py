"""What the client calls: every endpoint's path, the array field of each paged answer, and
the flat Arrow layout of each bulk (columnar) endpoint.

Numbers refer to the endpoint list in the shared API notes (``spotler-api.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import pyarrow as pa

from spotler_pipeline.client.timestamps import TIMESTAMP_TYPE

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
    "BatchColumn",
    "BatchLayout",
    "Endpoint",
]


@dataclass(frozen=True)
class Endpoint:
    """One GET endpoint: a path template and, when paged, the name of its array field."""

    number: int
    path: str
    array_field: str | None = None

    def path_for(self, **ids: str) -> str:
        """The path with every id percent-encoded as one segment (``a+b@x.nl`` ->
        ``a%2Bb%40x.nl``), so ids containing ``/``, ``+``, ``@`` or ``?`` stay intact."""
        return self.path.format(**{k: quote(str(v), safe="") for k, v in ids.items()})


MAILINGS = Endpoint(1, "/mailing")
MAILING = Endpoint(2, "/mailing/{mailing_id}")
MAILING_STATISTICS = Endpoint(3, "/mailing/{mailing_id}/statistics")
MAILING_RECIPIENTS = Endpoint(4, "/mailing/{mailing_id}/recipients", "recipients")
MAILING_OPENS = Endpoint(5, "/mailing/{mailing_id}/opens", "opens")
MAILING_CONTACT_OPENS = Endpoint(6, "/mailing/{mailing_id}/opens/{contact_id}", "opens")
MAILING_CLICKS = Endpoint(7, "/mailing/{mailing_id}/clicks", "clicks")
MAILING_CONTACT_CLICKS = Endpoint(8, "/mailing/{mailing_id}/clicks/{contact_id}", "clicks")
MAILING_BOUNCES = Endpoint(9, "/mailing/{mailing_id}/bounces", "bounces")
CONTACT_MAILINGS = Endpoint(10, "/contact/{contact_id}/mailings", "mailingHistories")
CONTACT_FORMS = Endpoint(11, "/contact/{contact_id}/forms", "formHistories")
CONTACT_CAMPAIGN_MAILINGS = Endpoint(
    12, "/contact/{contact_id}/campaign-mailings", "campaignMailingHistories"
)
FORMS = Endpoint(13, "/form/list")
FORM_RESULT = Endpoint(14, "/form/result/{form_id}/{form_result_id}")
FORM_RESULTS = Endpoint(15, "/form/result/{form_id}")
CAMPAIGNS = Endpoint(16, "/campaign/list")
CAMPAIGN_MAILINGS = Endpoint(17, "/campaign/{campaign_id}/mailing")
CAMPAIGN_MAILING = Endpoint(18, "/campaign-mailing/{campaign_mailing_id}")
CAMPAIGN_MAILING_RECIPIENTS = Endpoint(
    19, "/campaign-mailing/{campaign_mailing_id}/recipients", "recipients"
)
CAMPAIGN_MAILING_OPENS = Endpoint(20, "/campaign-mailing/{campaign_mailing_id}/opens", "opens")
CAMPAIGN_MAILING_SUBSCRIPTION_OPENS = Endpoint(
    21, "/campaign-mailing/{campaign_mailing_id}/opens/{subscription_id}", "opens"
)
CAMPAIGN_MAILING_CLICKS = Endpoint(22, "/campaign-mailing/{campaign_mailing_id}/clicks", "clicks")
CAMPAIGN_MAILING_SUBSCRIPTION_CLICKS = Endpoint(
    23, "/campaign-mailing/{campaign_mailing_id}/clicks/{subscription_id}", "clicks"
)
CAMPAIGN_MAILING_BOUNCES = Endpoint(
    24, "/campaign-mailing/{campaign_mailing_id}/bounces", "bounces"
)


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


_CONTACT = (
    BatchColumn("contact_external_id", ("contactIdentifier", "externalId")),
    BatchColumn("contact_encrypted_id", ("contactIdentifier", "encryptedId")),
)
_SUBSCRIPTION = BatchColumn("campaign_subscription_id", ("campaignSubscriptionId",))
_OPEN = (*_CONTACT, BatchColumn("open_date", ("openDate",), timestamp=True))
_CLICK = (
    *_CONTACT,
    BatchColumn("click_date", ("clickDate",), timestamp=True),
    BatchColumn("link_id", ("linkId",)),
)
_BOUNCE = (
    *_CONTACT,
    BatchColumn("bounce_date", ("bounceDate",), timestamp=True),
    BatchColumn("bounce_type", ("type",)),
)

RECIPIENT_LAYOUT = BatchLayout(_CONTACT)
OPEN_LAYOUT = BatchLayout(_OPEN)
CLICK_LAYOUT = BatchLayout(_CLICK)
BOUNCE_LAYOUT = BatchLayout(_BOUNCE)
CAMPAIGN_RECIPIENT_LAYOUT = BatchLayout(
    (*_CONTACT, BatchColumn("send_date", ("sendDate",), timestamp=True), _SUBSCRIPTION)
)
CAMPAIGN_OPEN_LAYOUT = BatchLayout((*_OPEN, _SUBSCRIPTION))
CAMPAIGN_CLICK_LAYOUT = BatchLayout((*_CLICK, _SUBSCRIPTION))
CAMPAIGN_BOUNCE_LAYOUT = BatchLayout((*_BOUNCE, _SUBSCRIPTION))

RECIPIENT_SCHEMA = RECIPIENT_LAYOUT.schema
OPEN_SCHEMA = OPEN_LAYOUT.schema
CLICK_SCHEMA = CLICK_LAYOUT.schema
BOUNCE_SCHEMA = BOUNCE_LAYOUT.schema
CAMPAIGN_RECIPIENT_SCHEMA = CAMPAIGN_RECIPIENT_LAYOUT.schema
CAMPAIGN_OPEN_SCHEMA = CAMPAIGN_OPEN_LAYOUT.schema
CAMPAIGN_CLICK_SCHEMA = CAMPAIGN_CLICK_LAYOUT.schema
CAMPAIGN_BOUNCE_SCHEMA = CAMPAIGN_BOUNCE_LAYOUT.schema
