"""Typed records for Spotler's JSON answers: the client's record path.

The record path serves whoever wants Spotler's answers as Python objects: the catalogue
endpoints (mailings, forms, campaigns, their details and statistics), a contact's history
for a CRM-style customer card (endpoints 10-12: the contact assets read these), and one
contact's or one subscription's interactions (6, 8, 21, 23: rows of their own shape,
``{openDate}`` / ``{clickDate, linkId}``, the contact or subscription being the one asked
for). The bulk interaction endpoints (4, 5, 7, 9, 19, 20, 22, 24) have no records: they come
as Arrow batches only (``*_batches``, :mod:`~spotler_pipeline.client.columnar`).

Each class has ``from_json(data[, zone])``. Parsing is tolerant in the ways the API notes ask
for: unknown fields are ignored, missing or ``null`` fields become ``None``, ids that arrive as
JSON numbers become strings. A value of the wrong kind altogether (an object where a count
belongs) raises ``ValueError``/``TypeError``, which the client reports as a
``SpotlerResponseError``. Timestamps come out as aware ``datetime`` values in UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Self

from spotler_pipeline.client.timestamps import parse_api_datetime
from spotler_pipeline.client.values import boolean, integer, text

__all__ = [
    "Campaign",
    "CampaignMailing",
    "CampaignMailingDetails",
    "CampaignMailingHistory",
    "Click",
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
    "SubscriptionClick",
    "SubscriptionOpen",
    "Trigger",
    "contact_click",
    "contact_open",
]

Json = Mapping[str, Any]


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


def _optional_obj(value: Any) -> Json | None:
    return None if value is None else _obj(value)


@dataclass(frozen=True, slots=True)
class ContactIdentifier:
    """``contactIdentifier`` of an interaction row."""

    external_id: str | None
    encrypted_id: str | None


@dataclass(frozen=True, slots=True)
class Message:
    name: str | None
    author: str | None
    subject: str | None
    from_name: str | None
    from_email: str | None

    @classmethod
    def from_json(cls, data: Any) -> Self:
        d = _obj(data)
        return cls(
            name=text(d.get("name")),
            author=text(d.get("author")),
            subject=text(d.get("subject")),
            from_name=text(d.get("fromName")),
            from_email=text(d.get("fromEmail")),
        )


@dataclass(frozen=True, slots=True)
class Link:
    id: str | None
    name: str | None
    url: str | None
    code: str | None
    type: str | None

    @classmethod
    def from_json(cls, data: Any) -> Self:
        d = _obj(data)
        return cls(
            id=text(d.get("id")),
            name=text(d.get("name")),
            url=text(d.get("url")),
            code=text(d.get("code")),
            type=text(d.get("type")),
        )


def _message(d: Json) -> Message | None:
    message = _optional_obj(d.get("message"))
    return None if message is None else Message.from_json(message)


def _links(d: Json) -> tuple[Link, ...]:
    return tuple(Link.from_json(link) for link in _list(d.get("links")))


@dataclass(frozen=True, slots=True)
class MailingSummary:
    """A one-off mailing as listed by endpoint 1 (and embedded in contact histories)."""

    encrypted_id: str | None
    name: str | None
    scheduled_start_date: datetime | None
    type: str | None
    archive_link: str | None
    sent_count: int | None

    @classmethod
    def from_json(cls, data: Any, zone: tzinfo) -> Self:
        d = _obj(data)
        return cls(**_summary_fields(d, zone))


def _summary_fields(d: Json, zone: tzinfo) -> dict[str, Any]:
    return {
        "encrypted_id": text(d.get("encryptedId")),
        "name": text(d.get("name")),
        "scheduled_start_date": parse_api_datetime(d.get("scheduledStartDate"), zone),
        "type": text(d.get("type")),
        "archive_link": text(d.get("archiveLink")),
        "sent_count": integer(d.get("sentCount")),
    }


@dataclass(frozen=True, slots=True)
class MailingDetails(MailingSummary):
    """Endpoint 2: the summary fields plus sender, target group, message and links.

    ``sender`` and ``target_group`` are kept as text; should Spotler send an object there,
    it is kept as compact JSON text rather than dropped.
    """

    sender: str | None
    target_group: str | None
    message: Message | None
    links: tuple[Link, ...]

    @classmethod
    def from_json(cls, data: Any, zone: tzinfo) -> Self:
        d = _obj(data)
        return cls(
            **_summary_fields(d, zone),
            sender=text(d.get("sender")),
            target_group=text(d.get("targetGroup")),
            message=_message(d),
            links=_links(d),
        )


_STATISTICS = {
    "sent_count": "sentCount",
    "accepted_count": "acceptedCount",
    "open_count": "openCount",
    "open_rendered_count": "openRenderedCount",
    "click_count": "clickCount",
    "hardbounce_count": "hardbounceCount",
    "softbounce_count": "softbounceCount",
    "not_retained_after_bounce_count": "notRetainedAfterBounceCount",
    "conversion_click_count": "conversionClickCount",
    "unsubscribe_count": "unsubscribeCount",
    "to_webshop_count": "toWebshopCount",
    "shoppingcart_created_count": "shoppingcartCreatedCount",
    "shoppingcart_converted_count": "shoppingcartConvertedCount",
}


@dataclass(frozen=True, slots=True)
class MailingStatistics:
    """Endpoint 3: the mailing's statistics as they stand now."""

    sent_count: int | None
    accepted_count: int | None
    open_count: int | None
    open_rendered_count: int | None
    click_count: int | None
    hardbounce_count: int | None
    softbounce_count: int | None
    not_retained_after_bounce_count: int | None
    conversion_click_count: int | None
    unsubscribe_count: int | None
    to_webshop_count: int | None
    shoppingcart_created_count: int | None
    shoppingcart_converted_count: int | None
    #: total conversion value in cents (an int64 in Spotler's contract)
    conversion_value: int | None

    @classmethod
    def from_json(cls, data: Any) -> Self:
        d = _obj(data)
        return cls(
            **{attr: integer(d.get(key)) for attr, key in _STATISTICS.items()},
            conversion_value=integer(d.get("conversionValue")),
        )


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


def _experience(d: Json, zone: tzinfo) -> dict[str, Any]:
    """What a contact's history says of one message (endpoints 10 and 12)."""
    return {
        "sent_date": parse_api_datetime(d.get("sentDate"), zone),
        "opened": boolean(d.get("opened")),
        "clicked": boolean(d.get("clicked")),
        "bounce": text(d.get("bounce")),
    }


@dataclass(frozen=True, slots=True)
class MailingHistory:
    """Endpoint 10: one mailing as one contact experienced it."""

    mailing: MailingSummary | None
    sent_date: datetime | None
    opened: bool | None
    clicked: bool | None
    bounce: str | None

    @classmethod
    def from_json(cls, data: Any, zone: tzinfo) -> Self:
        d = _obj(data)
        mailing = _optional_obj(d.get("mailing"))
        return cls(
            mailing=None if mailing is None else MailingSummary.from_json(mailing, zone),
            **_experience(d, zone),
        )


@dataclass(frozen=True, slots=True)
class Form:
    id: str | None
    name: str | None
    form_sub_type: str | None
    form_state: str | None

    @classmethod
    def from_json(cls, data: Any) -> Self:
        d = _obj(data)
        return cls(
            id=text(d.get("id")),
            name=text(d.get("name")),
            form_sub_type=text(d.get("formSubType")),
            form_state=text(d.get("formState")),
        )


@dataclass(frozen=True, slots=True)
class FormHistory:
    """Endpoint 11: one form submission of one contact."""

    form: Form | None
    form_result_id: str | None
    submit_date: datetime | None
    completed: bool | None

    @classmethod
    def from_json(cls, data: Any, zone: tzinfo) -> Self:
        d = _obj(data)
        form = _optional_obj(d.get("form"))
        return cls(
            form=None if form is None else Form.from_json(form),
            form_result_id=text(d.get("formResultId")),
            submit_date=parse_api_datetime(d.get("submitDate"), zone),
            completed=boolean(d.get("completed")),
        )


@dataclass(frozen=True, slots=True)
class FormAnswer:
    """One answer. Spotler's contract makes ``answer`` an array of strings (one element for
    an open or scale question, several for multiple choice, empty for none); ``answer`` is
    kept exactly as the JSON had it (a bare text, number or null is tolerated), and
    :attr:`values` gives it as the contract means it."""

    rank: int | None
    field_id: str | None
    description: str | None
    answer: str | int | float | bool | list[Any] | dict[str, Any] | None

    @classmethod
    def from_json(cls, data: Any) -> Self:
        d = _obj(data)
        return cls(
            rank=integer(d.get("rank")),
            field_id=text(d.get("fieldId")),
            description=text(d.get("description")),
            answer=d.get("answer"),
        )

    @property
    def values(self) -> tuple[str, ...]:
        """The answer as strings: an array's items (nulls dropped), a bare value as one
        item, nothing for null."""
        raw = self.answer
        items = raw if isinstance(raw, list) else [raw]
        return tuple(t for t in map(text, items) if t is not None)


@dataclass(frozen=True, slots=True)
class FormResult:
    """Endpoints 14 and 15: one submission of a form."""

    form_result_id: str | None
    submitted_at: datetime | None
    test_result: bool | None
    completed: bool | None
    answers: tuple[FormAnswer, ...]

    @classmethod
    def from_json(cls, data: Any, zone: tzinfo) -> Self:
        d = _obj(data)
        return cls(
            form_result_id=text(d.get("formResultId")),
            submitted_at=parse_api_datetime(d.get("submittedAt"), zone),
            test_result=boolean(d.get("testResult")),
            completed=boolean(d.get("completed")),
            answers=tuple(FormAnswer.from_json(a) for a in _list(d.get("answers"))),
        )


@dataclass(frozen=True, slots=True)
class Trigger:
    encrypted_id: str | None
    name: str | None

    @classmethod
    def from_json(cls, data: Any) -> Self:
        d = _obj(data)
        return cls(encrypted_id=text(d.get("encryptedId")), name=text(d.get("name")))


@dataclass(frozen=True, slots=True)
class Campaign:
    """Endpoint 16: an automated campaign and what triggers it."""

    encrypted_id: str | None
    name: str | None
    active: bool | None
    triggers: tuple[Trigger, ...]

    @classmethod
    def from_json(cls, data: Any) -> Self:
        d = _obj(data)
        return cls(
            encrypted_id=text(d.get("encryptedId")),
            name=text(d.get("name")),
            active=boolean(d.get("active")),
            triggers=tuple(Trigger.from_json(t) for t in _list(d.get("triggers"))),
        )


@dataclass(frozen=True, slots=True)
class CampaignMailing:
    """Endpoint 17 (and embedded in endpoint 12): one message step of a campaign."""

    encrypted_id: str | None
    name: str | None
    type: str | None

    @classmethod
    def from_json(cls, data: Any) -> Self:
        d = _obj(data)
        return cls(**_campaign_mailing_fields(d))


def _campaign_mailing_fields(d: Json) -> dict[str, Any]:
    return {
        "encrypted_id": text(d.get("encryptedId")),
        "name": text(d.get("name")),
        "type": text(d.get("type")),
    }


@dataclass(frozen=True, slots=True)
class CampaignMailingDetails(CampaignMailing):
    """Endpoint 18: a campaign message with its content and links."""

    message: Message | None
    links: tuple[Link, ...]

    @classmethod
    def from_json(cls, data: Any) -> Self:
        d = _obj(data)
        return cls(**_campaign_mailing_fields(d), message=_message(d), links=_links(d))


@dataclass(frozen=True, slots=True)
class CampaignMailingHistory:
    """Endpoint 12: one campaign message as one contact experienced it."""

    campaign_mailing: CampaignMailing | None
    campaign_subscription_id: str | None
    sent_date: datetime | None
    opened: bool | None
    clicked: bool | None
    bounce: str | None

    @classmethod
    def from_json(cls, data: Any, zone: tzinfo) -> Self:
        d = _obj(data)
        mailing = _optional_obj(d.get("campaignMailing"))
        return cls(
            campaign_mailing=None if mailing is None else CampaignMailing.from_json(mailing),
            campaign_subscription_id=text(d.get("campaignSubscriptionId")),
            **_experience(d, zone),
        )
