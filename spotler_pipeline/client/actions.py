"""Spotler's two write endpoints a follow-up action uses, one contact per call.

- :func:`trigger_campaign`: ``POST /campaign/trigger/{encryptedTriggerId}`` with a
  ``CampaignTriggerRequest`` (``externalContactId``, ``campaignFields``): the contact enters
  the campaign behind that trigger.
- :func:`update_contact`: ``PUT /contact/{externalId}`` with a ``ContactRequest``
  (``update: true``, ``contact {externalId, properties}``): properties of an existing
  contact are set; the others are left as they are (``purge`` stays false).

Each returns an :class:`Outcome` instead of raising for what Spotler says about the
contact, because its answers are per contact and every one of them is worth keeping:

- 204: ``sent``;
- 400 (``errorType``/``message``, e.g. ``CONTACT_OPTOUT``, "Campaign inactive", "Contact
  already in campaign", ``INVALID_PROPERTY``) and 404 (unknown contact or trigger):
  ``rejected``, permanent: sending the same request again would get the same answer;
- 408/429/5xx and unreachable hosts, after the requester's own retries with back-off:
  ``failed``, transient: worth sending again on a later run;
- a request that went out with its answer lost: ``unknown`` (Spotler may have acted).

Credentials problems (401/403) still raise: no contact is to blame and every other call
would fail the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from spotler_pipeline.client.client import SpotlerClient
from spotler_pipeline.client.errors import (
    SpotlerAuthError,
    SpotlerRequestError,
    SpotlerUnavailableError,
    SpotlerUncertainError,
)

__all__ = ["Outcome", "OutcomeStatus", "trigger_campaign", "update_contact"]

TRIGGER_PATH = "/campaign/trigger/{trigger_id}"
CONTACT_PATH = "/contact/{external_id}"

OutcomeStatus = Literal["sent", "rejected", "failed", "unknown"]


@dataclass(frozen=True)
class Outcome:
    """What Spotler answered for one contact. ``message`` has contact ids masked."""

    status: OutcomeStatus
    http_status: int | None = None
    error_type: str | None = None
    message: str | None = None


def trigger_campaign(
    client: SpotlerClient,
    trigger_id: str,
    external_contact_id: str,
    fields: Mapping[str, Any] | None = None,
) -> Outcome:
    """Enter the contact into the campaign of ``trigger_id`` (an encrypted trigger id from
    ``/campaign/list``); ``fields`` fill the campaign's placeholders (STRING fields)."""
    body: dict[str, Any] = {"externalContactId": external_contact_id}
    if fields:
        body["campaignFields"] = [
            {"name": name, "type": "STRING", "value": _text(value)}
            for name, value in fields.items()
        ]
    path = TRIGGER_PATH.format(trigger_id=quote(trigger_id, safe=""))
    return _send(client, "POST", path, body, external_contact_id)


def update_contact(
    client: SpotlerClient, external_contact_id: str, properties: Mapping[str, Any]
) -> Outcome:
    """Set ``properties`` of an existing contact (``update: true``; others untouched)."""
    body = {
        "update": True,
        "contact": {"externalId": external_contact_id, "properties": dict(properties)},
    }
    path = CONTACT_PATH.format(external_id=quote(external_contact_id, safe=""))
    return _send(client, "PUT", path, body, external_contact_id)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _send(client: SpotlerClient, method: str, path: str, body: Any, contact: str) -> Outcome:
    try:
        client.requester.request(
            method, path, None, lambda _: None, body=body, contact_ids=[contact]
        )
    except SpotlerAuthError:
        raise
    except SpotlerRequestError as exc:  # 400, 404 and any other 4xx: Spotler said no
        return Outcome("rejected", exc.status, exc.error_type, exc.api_message or exc.message)
    except SpotlerUnavailableError as exc:
        return Outcome("failed", exc.status, exc.error_type, exc.message)
    except SpotlerUncertainError as exc:
        return Outcome("unknown", None, None, exc.message)
    return Outcome("sent", 204)
