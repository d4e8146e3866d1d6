"""The two write endpoints a follow-up action calls, as the contract describes them.

- ``POST /campaign/trigger/{encryptedTriggerId}`` (``CampaignTriggerRequest``): 204; 404
  ``TRIGGER_NOTFOUND`` for an unknown trigger; 400 for an unknown contact ("Contact not
  found"), an opted-out contact (``CONTACT_OPTOUT``), an inactive campaign ("Campaign
  inactive") and a contact already in the campaign ("Contact already in campaign", when
  triggered twice).
- ``PUT /contact/{externalId}`` (``ContactRequest``, ``update: true``): 204; 404
  ``CONTACT_NOT_FOUND``; 400 ``INVALID_PROPERTY`` for a property name the account does not
  have (:data:`PROPERTIES`) and ``INVALID_PARAMS`` for a body that is not a ContactRequest.

Every accepted write is remembered (:attr:`Writes.received`), so tests count what was sent.
A contact is opted out when its index is in :meth:`Writes.opted_out` (one in
:data:`OPT_OUT_EVERY`), deterministic per account.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from spotler_pipeline.simulator._account import Account
from spotler_pipeline.simulator._api import ApiError, Response

#: Contact properties the simulated account has (``/contact/properties/list`` would list them).
PROPERTIES = frozenset(
    {"email", "firstName", "lastName", "hardbounce_date", "call_back_reason", "webshop_clicks"}
)
OPT_OUT_EVERY = 20
_FIELD_TYPES = ("STRING", "PRODUCTLIST", "URL")


@dataclass(frozen=True)
class Write:
    """One accepted write: ``kind`` (``trigger`` | ``contact``), its target and body."""

    kind: str
    target: str
    contact: str
    body: dict[str, Any]


class Writes:
    """The write side of a simulated account; thread-safe."""

    def __init__(self, account: Account) -> None:
        self.account = account
        self.lock = threading.Lock()
        self.received: list[Write] = []
        self._triggers = {
            t["encryptedId"]: campaign for campaign in account.campaigns for t in campaign.triggers
        }
        self._in_campaign: set[tuple[str, str]] = set()

    def opted_out(self, index: int) -> bool:
        return index % OPT_OUT_EVERY == OPT_OUT_EVERY - 1

    def route(self, method: str, segments: list[str]) -> Callable[[bytes], Response] | None:
        """The handler of a write (taking its body), or ``None`` for no write endpoint."""
        match method, segments:
            case "POST", ["campaign", "trigger", trigger_id]:
                return lambda payload: self.trigger(trigger_id, _json_object(payload))
            case "PUT", ["contact", external_id]:
                return lambda payload: self.update_contact(external_id, _json_object(payload))
        return None

    def trigger(self, trigger_id: str, body: dict[str, Any]) -> Response:
        campaign = self._triggers.get(trigger_id)
        if campaign is None:
            raise ApiError(404, "TRIGGER_NOTFOUND", "Trigger not found")
        contact = body.get("externalContactId")
        if not isinstance(contact, str) or not contact:
            raise ApiError(400, "INVALID_PARAMS", "externalContactId is required")
        fields = body.get("campaignFields", [])
        if not isinstance(fields, list) or not all(_campaign_field(f) for f in fields):
            raise ApiError(400, "INVALID_PARAMS", "campaignFields must be CampaignField objects")
        index = self.account.contacts.lookup(contact)
        if index is None:
            raise ApiError(400, "CONTACT_NOT_FOUND", "Contact not found")
        if self.opted_out(index):
            raise ApiError(400, "CONTACT_OPTOUT", "Contact has opted out")
        if not campaign.active:
            raise ApiError(400, "INVALID_STATE", "Campaign inactive")
        with self.lock:
            if (campaign.encrypted_id, contact) in self._in_campaign:
                raise ApiError(400, "INVALID_STATE", "Contact already in campaign")
            self._in_campaign.add((campaign.encrypted_id, contact))
            self.received.append(Write("trigger", trigger_id, contact, body))
        return Response(204, b"")

    def update_contact(self, external_id: str, body: dict[str, Any]) -> Response:
        contact = body.get("contact")
        if not isinstance(contact, dict) or not isinstance(contact.get("externalId"), str):
            raise ApiError(400, "INVALID_PARAMS", "contact.externalId is required")
        if body.get("update") is not True:
            raise ApiError(400, "INVALID_PARAMS", "only update: true is simulated")
        if contact["externalId"] != external_id:
            raise ApiError(400, "INVALID_PARAMS", "contact.externalId differs from the path")
        properties = contact.get("properties", {})
        if not isinstance(properties, dict):
            raise ApiError(400, "INVALID_PARAMS", "contact.properties must be an object")
        if self.account.contacts.lookup(external_id) is None:
            raise ApiError(404, "CONTACT_NOT_FOUND", "Given contact not found")
        invalid = sorted(set(properties) - PROPERTIES)
        if invalid:
            raise ApiError(400, "INVALID_PROPERTY", f"Property is invalid: {invalid[0]}")
        with self.lock:
            self.received.append(Write("contact", external_id, external_id, body))
        return Response(204, b"")


def _campaign_field(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("name"), str)
        and value.get("type", "STRING") in _FIELD_TYPES
    )


def _json_object(payload: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise ApiError(400, "INVALID_PARAMS", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "INVALID_PARAMS", "the body must be a JSON object")
    return body
