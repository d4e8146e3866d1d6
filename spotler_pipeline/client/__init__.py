"""The API client layer: HTTP, OAuth 1.0a signing, paging, retries and typed records for
Spotler's (MailPlus) reporting endpoints. Knows nothing of Dagster or DuckDB.

>>> with SpotlerClient(ClientSettings(consumer_key="...", consumer_secret="...")) as client:
...     for batch in client.mailing_open_batches("mailing-id"):
...         ...
"""

from spotler_pipeline.client.client import SpotlerClient
from spotler_pipeline.client.endpoints import (
    BOUNCE_SCHEMA,
    CAMPAIGN_BOUNCE_SCHEMA,
    CAMPAIGN_CLICK_SCHEMA,
    CAMPAIGN_OPEN_SCHEMA,
    CAMPAIGN_RECIPIENT_SCHEMA,
    CLICK_SCHEMA,
    OPEN_SCHEMA,
    RECIPIENT_SCHEMA,
)
from spotler_pipeline.client.errors import (
    SpotlerAuthError,
    SpotlerError,
    SpotlerNotFoundError,
    SpotlerRequestError,
    SpotlerResponseError,
    SpotlerUnavailableError,
)
from spotler_pipeline.client.models import (
    Bounce,
    Campaign,
    CampaignBounce,
    CampaignClick,
    CampaignMailing,
    CampaignMailingDetails,
    CampaignMailingHistory,
    CampaignOpen,
    CampaignRecipient,
    Click,
    ContactIdentifier,
    Form,
    FormAnswer,
    FormHistory,
    FormResult,
    Link,
    MailingDetails,
    MailingHistory,
    MailingStatistics,
    MailingSummary,
    Message,
    Open,
    Recipient,
    Trigger,
)
from spotler_pipeline.client.settings import DEFAULT_BASE_URL, MAX_PAGE_SIZE, ClientSettings
from spotler_pipeline.client.timestamps import TIMESTAMP_TYPE

__all__ = [
    "BOUNCE_SCHEMA",
    "CAMPAIGN_BOUNCE_SCHEMA",
    "CAMPAIGN_CLICK_SCHEMA",
    "CAMPAIGN_OPEN_SCHEMA",
    "CAMPAIGN_RECIPIENT_SCHEMA",
    "CLICK_SCHEMA",
    "DEFAULT_BASE_URL",
    "MAX_PAGE_SIZE",
    "OPEN_SCHEMA",
    "RECIPIENT_SCHEMA",
    "TIMESTAMP_TYPE",
    "Bounce",
    "Campaign",
    "CampaignBounce",
    "CampaignClick",
    "CampaignMailing",
    "CampaignMailingDetails",
    "CampaignMailingHistory",
    "CampaignOpen",
    "CampaignRecipient",
    "Click",
    "ClientSettings",
    "ContactIdentifier",
    "Form",
    "FormAnswer",
    "FormHistory",
    "FormResult",
    "Link",
    "MailingDetails",
    "MailingHistory",
    "MailingStatistics",
    "MailingSummary",
    "Message",
    "Open",
    "Recipient",
    "SpotlerAuthError",
    "SpotlerClient",
    "SpotlerError",
    "SpotlerNotFoundError",
    "SpotlerRequestError",
    "SpotlerResponseError",
    "SpotlerUnavailableError",
    "Trigger",
]
