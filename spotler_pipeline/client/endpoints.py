"""What the client calls: every endpoint's path, the array field of each paged answer and,
for the bulk interaction endpoints, the flat layout their rows become (declared in
:mod:`spotler_pipeline.row_layouts`, which the warehouse reads too).

Numbers refer to the endpoint list in the shared API notes (``spotler-api.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from spotler_pipeline.row_layouts import (
    BOUNCE_LAYOUT,
    CAMPAIGN_BOUNCE_LAYOUT,
    CAMPAIGN_CLICK_LAYOUT,
    CAMPAIGN_OPEN_LAYOUT,
    CAMPAIGN_RECIPIENT_LAYOUT,
    CLICK_LAYOUT,
    OPEN_LAYOUT,
    RECIPIENT_LAYOUT,
    BatchLayout,
)

__all__ = ["Endpoint"]


@dataclass(frozen=True)
class Endpoint:
    """One GET endpoint: a path template; when paged, the name of its array field; for a
    bulk interaction endpoint, the layout of its rows as Arrow batches. ``sized``: whether a
    paged endpoint takes ``pageSize`` (the contact histories 10 and 12 take ``after`` only,
    their page size fixed by Spotler at 50)."""

    number: int
    path: str
    array_field: str | None = None
    layout: BatchLayout | None = None
    sized: bool = True

    def path_for(self, **ids: str) -> str:
        """The path with every id percent-encoded as one segment (``a+b@x.nl`` ->
        ``a%2Bb%40x.nl``), so ids containing ``/``, ``+``, ``@`` or ``?`` stay intact."""
        return self.path.format(**{k: quote(str(v), safe="") for k, v in ids.items()})


MAILINGS = Endpoint(1, "/mailing")
MAILING = Endpoint(2, "/mailing/{mailing_id}")
MAILING_STATISTICS = Endpoint(3, "/mailing/{mailing_id}/statistics")
MAILING_RECIPIENTS = Endpoint(4, "/mailing/{mailing_id}/recipients", "recipients", RECIPIENT_LAYOUT)
MAILING_OPENS = Endpoint(5, "/mailing/{mailing_id}/opens", "opens", OPEN_LAYOUT)
MAILING_CONTACT_OPENS = Endpoint(6, "/mailing/{mailing_id}/opens/{contact_id}", "opens")
MAILING_CLICKS = Endpoint(7, "/mailing/{mailing_id}/clicks", "clicks", CLICK_LAYOUT)
MAILING_CONTACT_CLICKS = Endpoint(8, "/mailing/{mailing_id}/clicks/{contact_id}", "clicks")
MAILING_BOUNCES = Endpoint(9, "/mailing/{mailing_id}/bounces", "bounces", BOUNCE_LAYOUT)
CONTACT_MAILINGS = Endpoint(10, "/contact/{contact_id}/mailings", "mailingHistories", sized=False)
CONTACT_FORMS = Endpoint(11, "/contact/{contact_id}/forms", "formHistories")
CONTACT_CAMPAIGN_MAILINGS = Endpoint(
    12, "/contact/{contact_id}/campaign-mailings", "campaignMailingHistories", sized=False
)
FORMS = Endpoint(13, "/form/list")
FORM_RESULT = Endpoint(14, "/form/result/{form_id}/{form_result_id}")
FORM_RESULTS = Endpoint(15, "/form/result/{form_id}")
CAMPAIGNS = Endpoint(16, "/campaign/list")
CAMPAIGN_MAILINGS = Endpoint(17, "/campaign/{campaign_id}/mailing")
CAMPAIGN_MAILING = Endpoint(18, "/campaign-mailing/{campaign_mailing_id}")
CAMPAIGN_MAILING_RECIPIENTS = Endpoint(
    19,
    "/campaign-mailing/{campaign_mailing_id}/recipients",
    "recipients",
    CAMPAIGN_RECIPIENT_LAYOUT,
)
CAMPAIGN_MAILING_OPENS = Endpoint(
    20, "/campaign-mailing/{campaign_mailing_id}/opens", "opens", CAMPAIGN_OPEN_LAYOUT
)
CAMPAIGN_MAILING_SUBSCRIPTION_OPENS = Endpoint(
    21, "/campaign-mailing/{campaign_mailing_id}/opens/{subscription_id}", "opens"
)
CAMPAIGN_MAILING_CLICKS = Endpoint(
    22, "/campaign-mailing/{campaign_mailing_id}/clicks", "clicks", CAMPAIGN_CLICK_LAYOUT
)
CAMPAIGN_MAILING_SUBSCRIPTION_CLICKS = Endpoint(
    23, "/campaign-mailing/{campaign_mailing_id}/clicks/{subscription_id}", "clicks"
)
CAMPAIGN_MAILING_BOUNCES = Endpoint(
    24, "/campaign-mailing/{campaign_mailing_id}/bounces", "bounces", CAMPAIGN_BOUNCE_LAYOUT
)
