"""Spotler's catalogue and contact-history records: every field declared here, once.

A record (a mailing, a link, a form result, one mailing of a contact's history, ...) is a
frozen dataclass whose fields say, beside their Python name and type:

- the JSON key Spotler sends the value under, and so how the client decodes it (the kind
  follows from the type: text, integer, boolean, timestamp, a nested record, a list of
  records; :func:`raw_json` keeps a value exactly as the JSON had it);
- the warehouse column the value becomes, when its name or its SQL type is not the field's
  own (``Link.id`` is ``link_id``, ``MailingStatistics.conversion_value`` is
  ``conversion_value_cents``, ``FormAnswer.rank`` an ``INTEGER``), and what the column means
  to a reader.

Both layers read these declarations: the client (``client/models.py``) decodes Spotler's JSON
into the records by their fields, and the warehouse (``warehouse/model.py``,
:func:`~spotler_pipeline.warehouse.model.record_columns`) takes a catalogue table's columns
from its record, adding only what the warehouse knows (partition and parent-id columns,
counts a step works out, ``present``). The Dagster layer builds each row from the record's
:func:`row_values`. A nested record's fields become columns of its parent's row (a mailing's
``message``), each under its own column name unless the parent's field names them (a contact
history keeps three columns of its mailing, under names of its own); a list of records (a
mailing's ``links``) fills a table of its own.

Why here, a module of its own beside both layers (as :mod:`spotler_pipeline.row_layouts` for
the bulk interaction rows): the client must know nothing of DuckDB and the warehouse nothing
of HTTP, so neither may import the other; both may import plain data. This module imports
the standard library only.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, get_type_hints

#: The records, by name (the client offers them as its own: ``spotler_pipeline.client``).
RECORD_TYPES = (
    "Campaign",
    "CampaignMailing",
    "CampaignMailingDetails",
    "CampaignMailingHistory",
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
    "Trigger",
)

__all__ = [
    *RECORD_TYPES,
    "RecordColumn",
    "RecordField",
    "api",
    "fields_of",
    "raw_json",
    "record_columns_of",
    "row_values",
]

#: The kinds of value a field holds, each decoded its own way by the client.
TEXT = "text"
INTEGER = "integer"
BOOLEAN = "boolean"
TIMESTAMP = "timestamp"
JSON = "json"  # kept exactly as the JSON had it (text, number, array, object or null)
RECORD = "record"  # a nested object: its fields are columns of the parent's row
RECORDS = "records"  # an array of objects: rows of a table of their own, no column here

#: The SQL type a field of each kind is stored as, unless the field says otherwise.
SQL_TYPES = {
    TEXT: "VARCHAR",
    INTEGER: "BIGINT",
    BOOLEAN: "BOOLEAN",
    TIMESTAMP: "TIMESTAMPTZ",
    JSON: "JSON",
}

_SCALARS: dict[type, str] = {str: TEXT, bool: BOOLEAN, int: INTEGER, datetime: TIMESTAMP}
_META = "spotler"

#: The columns of a nested record that its parent's row keeps, by the nested record's
#: attribute: the column's name there, or its name and what it means there.
Kept = Mapping[str, str | tuple[str, str]]


@dataclass(frozen=True)
class _Declared:
    key: str
    description: str
    column: str | None
    sql_type: str | None
    kind: str | None
    keep: Kept | None


def api(
    key: str,
    description: str = "",
    *,
    column: str | None = None,
    sql_type: str | None = None,
    keep: Kept | None = None,
) -> Any:
    """A record field read from the JSON key ``key``, meaning ``description`` to a reader
    of its column. ``column`` and ``sql_type`` where the column's name or type is not the
    field's (the type otherwise follows the kind: ``BIGINT`` for an integer, ...). For a
    nested record, ``keep`` names the columns of it the parent's row holds (by default all
    of them, under their own names)."""
    return dataclasses.field(
        metadata={_META: _Declared(key, description, column, sql_type, None, keep)}
    )


def raw_json(key: str, description: str) -> Any:
    """A field kept exactly as the JSON had it, stored as JSON text."""
    return dataclasses.field(metadata={_META: _Declared(key, description, None, None, JSON, None)})


@dataclass(frozen=True)
class RecordField:
    """One field of a record as both layers read it."""

    name: str
    key: str
    kind: str
    description: str
    #: the nested record's class (kinds ``record`` and ``records``)
    record: type | None = None
    column: str | None = None
    sql_type: str | None = None
    keep: Kept | None = None


@dataclass(frozen=True)
class RecordColumn:
    """A column a record's row has: its name, the attributes leading from the record to its
    value, its SQL type and what it means."""

    name: str
    path: tuple[str, ...]
    sql_type: str
    description: str


@cache
def fields_of(record: type) -> tuple[RecordField, ...]:
    """The declared fields of ``record``, in order, each with its kind."""
    hints = get_type_hints(record)
    out = []
    for f in dataclasses.fields(record):
        declared = f.metadata.get(_META)
        if not isinstance(declared, _Declared):
            raise TypeError(f"{record.__name__}.{f.name} is not declared with api() or raw_json()")
        kind, nested = (declared.kind, None) if declared.kind else _kind(hints[f.name])
        if kind is None:
            raise TypeError(f"{record.__name__}.{f.name}: no kind of value for {hints[f.name]}")
        out.append(
            RecordField(
                name=f.name,
                key=declared.key,
                kind=kind,
                description=declared.description,
                record=nested,
                column=declared.column,
                sql_type=declared.sql_type,
                keep=declared.keep,
            )
        )
    return tuple(out)


def _kind(hint: Any) -> tuple[str | None, type | None]:
    """The kind of a field typed ``hint`` (``X | None`` is ``X``), and its nested record."""
    if isinstance(hint, types.UnionType):
        rest = [a for a in hint.__args__ if a is not type(None)]
        hint = rest[0] if len(rest) == 1 else None
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return RECORD, hint
    args = getattr(hint, "__args__", ())
    if getattr(hint, "__origin__", None) is tuple and len(args) == 2 and args[1] is Ellipsis:
        return (RECORDS, args[0]) if dataclasses.is_dataclass(args[0]) else (None, None)
    return _SCALARS.get(hint), None


@cache
def record_columns_of(record: type) -> tuple[RecordColumn, ...]:
    """The columns a row of ``record`` has, in the order of its fields: a value's own, a
    nested record's (those its parent keeps), none for a list of records."""
    columns: list[RecordColumn] = []
    for f in fields_of(record):
        if f.kind == RECORDS:
            continue
        if f.kind != RECORD:
            sql_type = f.sql_type or SQL_TYPES[f.kind]
            columns.append(RecordColumn(f.column or f.name, (f.name,), sql_type, f.description))
            continue
        assert f.record is not None
        nested = record_columns_of(f.record)
        if f.keep is None:
            columns.extend(dataclasses.replace(c, path=(f.name, *c.path)) for c in nested)
            continue
        own = {c.path: c for c in nested}
        for attr, kept in f.keep.items():
            if (attr,) not in own:
                raise TypeError(f"{record.__name__}.{f.name} keeps {attr!r}, no column of it")
            column = own[(attr,)]
            name, description = (kept, column.description) if isinstance(kept, str) else kept
            columns.append(RecordColumn(name, (f.name, attr), column.sql_type, description))
    return tuple(columns)


def row_values(record: Any) -> dict[str, Any]:
    """The values of ``record``'s columns by column name (a missing nested record's are
    ``None``)."""
    row = {}
    for column in record_columns_of(type(record)):
        value = record
        for attr in column.path:
            value = None if value is None else getattr(value, attr)
        row[column.name] = value
    return row


# -- the records -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """The content of a one-off mailing or of a campaign step."""

    name: str | None = api("name", "Name of the message (content) used.", column="message_name")
    author: str | None = api("author", "Author of the message.", column="message_author")
    subject: str | None = api("subject", "Subject line; NULL for SMS.")
    from_name: str | None = api("fromName", "Sender name shown to recipients.")
    from_email: str | None = api("fromEmail", "Sender address shown to recipients.")


@dataclass(frozen=True, slots=True)
class Link:
    """A trackable link of a mailing or campaign message; clicks name it by its id."""

    id: str | None = api("id", "Id of the link within Spotler (clicks.linkId).", column="link_id")
    name: str | None = api("name", "Name of the link.")
    url: str | None = api("url", "Target URL.")
    code: str | None = api("code", "Tracking code of the link.")
    type: str | None = api("type", "Link type (e.g. webshop, unsubscribe, conversion, facebook).")


@dataclass(frozen=True, slots=True)
class MailingSummary:
    """A one-off mailing as listed by endpoint 1 (and embedded in contact histories)."""

    encrypted_id: str | None = api("encryptedId", "Spotler's id of the mailing (encryptedId).")
    name: str | None = api("name", "Internal name of the mailing.")
    type: str | None = api("type", "EMAIL or SMS.")
    scheduled_start_date: datetime | None = api("scheduledStartDate", "When the send started.")
    archive_link: str | None = api("archiveLink", "Public web version of the mailing.")
    sent_count: int | None = api("sentCount", "Number of recipients the mailing was sent to.")


@dataclass(frozen=True, slots=True)
class MailingDetails(MailingSummary):
    """Endpoint 2: the summary fields plus sender, target group, message and links.

    ``sender`` and ``target_group`` are kept as text; should Spotler send an object there,
    it is kept as compact JSON text rather than dropped.
    """

    sender: str | None = api("sender", "The marketer who sent it.")
    target_group: str | None = api("targetGroup", "Target group the mailing was sent to.")
    message: Message | None = api("message")
    links: tuple[Link, ...] = api("links")


@dataclass(frozen=True, slots=True)
class MailingStatistics:
    """Endpoint 3: the mailing's statistics as they stand now."""

    sent_count: int | None = api("sentCount", "Messages sent.")
    accepted_count: int | None = api("acceptedCount", "Messages accepted by the receiving servers.")
    open_count: int | None = api(
        "openCount",
        "Unique opens, total (openCount): contacts who loaded the images or clicked a link; "
        "every click also counts as an open.",
    )
    open_rendered_count: int | None = api(
        "openRenderedCount",
        "Unique rendered opens (openRenderedCount): contacts who loaded the images, the "
        "contacts of mailing_opens.",
    )
    click_count: int | None = api("clickCount", "Clicks (unique clickers as Spotler counts them).")
    hardbounce_count: int | None = api("hardbounceCount", "Hard bounces.")
    softbounce_count: int | None = api("softbounceCount", "Soft bounces.")
    not_retained_after_bounce_count: int | None = api(
        "notRetainedAfterBounceCount", "Contacts removed after bouncing."
    )
    conversion_click_count: int | None = api("conversionClickCount", "Clicks on conversion links.")
    unsubscribe_count: int | None = api("unsubscribeCount", "Unsubscribes from this mailing.")
    to_webshop_count: int | None = api(
        "toWebshopCount", "Clicks through to the webshop; NULL without eCommerce."
    )
    shoppingcart_created_count: int | None = api(
        "shoppingcartCreatedCount", "Shopping carts created; NULL without eCommerce."
    )
    shoppingcart_converted_count: int | None = api(
        "shoppingcartConvertedCount", "Shopping carts converted to orders; NULL without eCommerce."
    )
    #: Money as Spotler reports it: an exact count of euro cents (an int64 in its contract);
    #: the column names the unit.
    conversion_value: int | None = api(
        "conversionValue",
        "Total conversion value in euro cents, as Spotler reports it (conversionValue); NULL "
        "when the account has no eCommerce.",
        column="conversion_value_cents",
    )


@dataclass(frozen=True, slots=True)
class Form:
    """A form or survey (endpoint 13, and embedded in a contact's form history)."""

    id: str | None = api("id", "Spotler's id of the form.")
    name: str | None = api("name", "Name of the form.")
    form_sub_type: str | None = api("formSubType", "normal, subscribe, unSubscribe or editProfile.")
    form_state: str | None = api("formState", "draft, proof or final.")


@dataclass(frozen=True, slots=True)
class FormAnswer:
    """One answer. Spotler's contract makes ``answer`` an array of strings (one element for
    an open or scale question, several for multiple choice, empty for none); ``answer`` is
    kept exactly as the JSON had it (a bare text, number or null is tolerated)."""

    rank: int | None = api("rank", "Position of the question in the form.", sql_type="INTEGER")
    field_id: str | None = api("fieldId", "Spotler's id of the form field.")
    description: str | None = api("description", "The question as the form shows it.")
    answer: str | int | float | bool | list[Any] | dict[str, Any] | None = raw_json(
        "answer",
        "The answer exactly as Spotler sent it: per its contract an array of strings (one "
        "element for an open or scale question, several for multiple choice, empty when "
        "unanswered).",
    )


@dataclass(frozen=True, slots=True)
class FormResult:
    """Endpoints 14 and 15: one submission of a form."""

    form_result_id: str | None = api("formResultId", "Spotler's id of the submission.")
    submitted_at: datetime | None = api("submittedAt", "When the form was submitted.")
    completed: bool | None = api("completed", "Whether every step of the form was filled in.")
    test_result: bool | None = api(
        "testResult", "A test submission (e.g. from the form's proof); not a real response."
    )
    answers: tuple[FormAnswer, ...] = api("answers")


@dataclass(frozen=True, slots=True)
class Trigger:
    """An event that enters a contact into a campaign."""

    encrypted_id: str | None = api(
        "encryptedId", "Spotler's encryptedId of the trigger.", column="trigger_id"
    )
    name: str | None = api("name", "Name of the trigger.")


@dataclass(frozen=True, slots=True)
class Campaign:
    """Endpoint 16: an automated campaign and what triggers it."""

    encrypted_id: str | None = api("encryptedId", "Spotler's id of the campaign (encryptedId).")
    name: str | None = api("name", "Name of the campaign.")
    active: bool | None = api("active", "Whether the campaign is switched on in Spotler.")
    triggers: tuple[Trigger, ...] = api("triggers")


@dataclass(frozen=True, slots=True)
class CampaignMailing:
    """Endpoint 17 (and embedded in endpoint 12): one message step of a campaign."""

    encrypted_id: str | None = api("encryptedId", "Spotler's id of the step (encryptedId).")
    name: str | None = api("name", "Name of the step.")
    type: str | None = api("type", "EMAIL or SMS.")


@dataclass(frozen=True, slots=True)
class CampaignMailingDetails(CampaignMailing):
    """Endpoint 18: a campaign message with its content and links."""

    message: Message | None = api("message")
    links: tuple[Link, ...] = api("links")


# What a contact's history says of one message it received (endpoints 10 and 12).
_SENT_DATE = "When it was sent to the contact."
_OPENED = (
    "The contact opened it, as Spotler's history reports (the contract does not say whether "
    "a click without loaded images counts: compare opened OR clicked with the card views' "
    "opened, which counts every click as an open)."
)
_CLICKED = "The contact clicked a link in it (as Spotler reports)."
_BOUNCE = "HARDBOUNCE, SOFTBOUNCE or NULL when it did not bounce."


def _received(key: str, prefix: str, what: str) -> Any:
    """The message a history row is about: its id, name and type are the columns
    ``<prefix>_id``, ``<prefix>_name`` and ``<prefix>_type`` of the row."""
    return api(
        key,
        keep={
            "encrypted_id": (f"{prefix}_id", f"Spotler's encryptedId of the {what}."),
            "name": (f"{prefix}_name", f"Name of the {what}."),
            "type": f"{prefix}_type",
        },
    )


@dataclass(frozen=True, slots=True)
class MailingHistory:
    """Endpoint 10: one mailing as one contact experienced it."""

    mailing: MailingSummary | None = _received("mailing", "mailing", "mailing")
    sent_date: datetime | None = api("sentDate", _SENT_DATE)
    opened: bool | None = api("opened", _OPENED)
    clicked: bool | None = api("clicked", _CLICKED)
    bounce: str | None = api("bounce", _BOUNCE)


@dataclass(frozen=True, slots=True)
class FormHistory:
    """Endpoint 11: one form submission of one contact."""

    form: Form | None = api(
        "form",
        keep={
            "id": "form_id",
            "name": "form_name",
            "form_sub_type": "form_sub_type",
            "form_state": "form_state",
        },
    )
    form_result_id: str | None = api(
        "formResultId", "Spotler's id of the submission (form_results)."
    )
    submit_date: datetime | None = api("submitDate", "When the contact submitted the form.")
    completed: bool | None = api("completed", "Whether the submission was completed.")


@dataclass(frozen=True, slots=True)
class CampaignMailingHistory:
    """Endpoint 12: one campaign message as one contact experienced it."""

    campaign_mailing: CampaignMailing | None = _received(
        "campaignMailing", "campaign_mailing", "campaign step"
    )
    campaign_subscription_id: str | None = api(
        "campaignSubscriptionId",
        "One pass of one contact through the campaign; a contact who enters the campaign "
        "twice has two subscriptions.",
    )
    sent_date: datetime | None = api("sentDate", _SENT_DATE)
    opened: bool | None = api("opened", _OPENED)
    clicked: bool | None = api("clicked", _CLICKED)
    bounce: str | None = api("bounce", _BOUNCE)
