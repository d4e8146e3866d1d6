"""The API client layer: HTTP, OAuth 1.0a signing, paging, retries and typed records for
Spotler's (MailPlus) reporting endpoints. Knows nothing of Dagster or DuckDB.

>>> with SpotlerClient(ClientSettings(consumer_key="...", consumer_secret="...")) as client:
...     for batch in client.mailing_open_batches("mailing-id"):
...         ...

The public surface is :data:`__all__`: what the modules below list as theirs (the client,
its settings, every exception and the masking of contact ids in :mod:`.errors`, every record
type in :mod:`.models`), plus the Arrow schemas of the bulk endpoints' batches, declared in
:mod:`spotler_pipeline.row_layouts`.
"""

from spotler_pipeline.client import client, errors, models, settings
from spotler_pipeline.client.client import *  # noqa: F403
from spotler_pipeline.client.errors import *  # noqa: F403
from spotler_pipeline.client.models import *  # noqa: F403
from spotler_pipeline.client.settings import *  # noqa: F403
from spotler_pipeline.row_layouts import (
    BOUNCE_SCHEMA,
    CAMPAIGN_BOUNCE_SCHEMA,
    CAMPAIGN_CLICK_SCHEMA,
    CAMPAIGN_OPEN_SCHEMA,
    CAMPAIGN_RECIPIENT_SCHEMA,
    CLICK_SCHEMA,
    OPEN_SCHEMA,
    RECIPIENT_SCHEMA,
    TIMESTAMP_TYPE,
)

__all__ = [
    *client.__all__,
    *settings.__all__,
    *errors.__all__,
    *models.__all__,
    "BOUNCE_SCHEMA",
    "CAMPAIGN_BOUNCE_SCHEMA",
    "CAMPAIGN_CLICK_SCHEMA",
    "CAMPAIGN_OPEN_SCHEMA",
    "CAMPAIGN_RECIPIENT_SCHEMA",
    "CLICK_SCHEMA",
    "OPEN_SCHEMA",
    "RECIPIENT_SCHEMA",
    "TIMESTAMP_TYPE",
]
