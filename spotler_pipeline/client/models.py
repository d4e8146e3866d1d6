"""Typed records for Spotler's JSON answers: the client's record path.

The record path serves whoever wants Spotler's answers as Python objects: the catalogue
endpoints (mailings, forms, campaigns, their details and statistics), a contact's history
for a CRM-style customer card (endpoints 10-12: the contact assets read these), and one
contact's or one subscription's interactions (6, 8, 21, 23: rows of their own shape,
``{openDate}`` / ``{clickDate, linkId}``, the contact or subscription being the one asked
for). The bulk interaction endpoints (4, 5, 7, 9, 19, 20, 22, 24) have no records: they come
as Arrow batches only (``*_batches``, :mod:`~spotler_pipeline.client.columnar`).

The catalogue and history records, and their fields, are declared in
:mod:`spotler_pipeline.records` (each field once: its JSON key, its kind, the warehouse column
it becomes and what that means); they are re-exported here. :func:`decode` reads any of them
from Spotler's JSON by those declarations. Parsing is tolerant in the ways the API notes ask
for: unknown fields are ignored, missing or ``null`` fields become ``None`` (an empty list for
a list of records), ids that arrive as JSON numbers become strings. A value of the wrong kind
altogether (an object where a count belongs) raises ``ValueError``/``TypeError``, which the
client reports as a ``SpotlerResponseError``. Timestamps come out as aware ``datetime``
values in UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Self, TypeVar

from spotler_pipeline import records
from spotler_pipeline.client.timestamps import parse_api_datetime
from spotler_pipeline.client.values import boolean, integer, text
from spotler_pipeline.records import *  # noqa: F403  (the records, offered as the client's)
from spotler_pipeline.records import RECORD_TYPES, RecordField

__all__ = [
    *RECORD_TYPES,
    "Click",
    "ContactIdentifier",
    "Open",
    "SubscriptionClick",
    "SubscriptionOpen",
    "contact_click",
    "contact_open",
    "decode",
]

Json = Mapping[str, Any]
R = TypeVar("R")


def _obj(data: Any) -> Json:
    if not isinstance(data, Mapping):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    return data


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise TypeError(f"expected a JSON array, got {type(value).__name__}")
    return value


def decode(record: type[R], data: Any, zone: tzinfo) -> R:
    """The ``record`` (a class of :mod:`spotler_pipeline.records`) that the JSON object
    ``data`` describes, each field read from its JSON key and converted by its kind;
    Spotler's local timestamps are read in ``zone``."""
    d = _obj(data)
    return record(
        **{f.name: _VALUES[f.kind](f, d.get(f.key), zone) for f in records.fields_of(record)}
    )


def _nested(f: RecordField, value: Any, zone: tzinfo) -> Any:
    assert f.record is not None
    return None if value is None else decode(f.record, value, zone)


def _nested_list(f: RecordField, value: Any, zone: tzinfo) -> tuple[Any, ...]:
    assert f.record is not None
    return tuple(decode(f.record, item, zone) for item in _list(value))


#: How a field of each kind is read from its JSON value.
_VALUES: dict[str, Callable[[RecordField, Any, tzinfo], Any]] = {
    records.TEXT: lambda f, v, zone: text(v),
    records.INTEGER: lambda f, v, zone: integer(v),
    records.BOOLEAN: lambda f, v, zone: boolean(v),
    records.TIMESTAMP: lambda f, v, zone: parse_api_datetime(v, zone),
    records.JSON: lambda f, v, zone: v,
    records.RECORD: _nested,
    records.RECORDS: _nested_list,
}


@dataclass(frozen=True, slots=True)
class ContactIdentifier:
    """``contactIdentifier`` of an interaction row."""

    external_id: str | None
    encrypted_id: str | None


@dataclass(frozen=True, slots=True)
class Open:
    """Endpoint 6: one open of a mailing by the contact asked for."""

    contact: ContactIdentifier
    open_date: datetime | None


@dataclass(frozen=True, slots=True)
class Click:
    """Endpoint 8: one click on a link of a mailing by the contact asked for."""

    contact: ContactIdentifier
    click_date: datetime | None
    link_id: str | None


def contact_open(data: Any, zone: tzinfo, external_contact_id: str) -> Open:
    """Endpoint 6: one ``MailingContactOpen`` row (``{openDate}``) of the contact asked for."""
    d = _obj(data)
    return Open(
        contact=ContactIdentifier(external_id=external_contact_id, encrypted_id=None),
        open_date=parse_api_datetime(d.get("openDate"), zone),
    )


def contact_click(data: Any, zone: tzinfo, external_contact_id: str) -> Click:
    """Endpoint 8: one ``MailingContactClick`` row (``{clickDate, linkId}``) of the contact
    asked for."""
    d = _obj(data)
    return Click(
        contact=ContactIdentifier(external_id=external_contact_id, encrypted_id=None),
        click_date=parse_api_datetime(d.get("clickDate"), zone),
        link_id=text(d.get("linkId")),
    )


@dataclass(frozen=True, slots=True)
class SubscriptionOpen:
    """Endpoint 21: one open of a campaign message within the subscription asked for."""

    campaign_subscription_id: str
    open_date: datetime | None

    @classmethod
    def from_json(cls, data: Any, zone: tzinfo, subscription_id: str) -> Self:
        d = _obj(data)
        return cls(subscription_id, parse_api_datetime(d.get("openDate"), zone))


@dataclass(frozen=True, slots=True)
class SubscriptionClick:
    """Endpoint 23: one click in a campaign message within the subscription asked for."""

    campaign_subscription_id: str
    click_date: datetime | None
    link_id: str | None

    @classmethod
    def from_json(cls, data: Any, zone: tzinfo, subscription_id: str) -> Self:
        d = _obj(data)
        return cls(
            subscription_id, parse_api_datetime(d.get("clickDate"), zone), text(d.get("linkId"))
        )
