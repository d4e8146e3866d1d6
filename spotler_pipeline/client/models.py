"""Typed records for Spotler's JSON answers.

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

import orjson

from spotler_pipeline.client.timestamps import parse_api_datetime

__all__ = [
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
    "Trigger",
]

Json = Mapping[str, Any]


def _obj(data: Any) -> Json:
    if not isinstance(data, Mapping):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    return data


def _str(value: Any) -> str | None:
    """Text as is; numbers and booleans as their JSON text; objects/lists as compact JSON."""
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TypeError("expected a number, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"expected a whole number, got {value!r}")
        return int(value)
    if isinstance(value, str):
        return int(value.strip())
    raise TypeError(f"expected a number, got {type(value).__name__}")


def _float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TypeError("expected a number, got a boolean")
    if isinstance(value, int | float | str):
        return float(value)
    raise TypeError(f"expected a number, got {type(value).__name__}")


def _bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"expected a boolean, got {value!r}")


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
    external_id: str | None
    encrypted_id: str | None

    @classmethod
    def from_json(cls, data: Any) -> Self:
        d = _obj(data) if data is not None else {}
        return cls(external_id=_str(d.get("externalId")), encrypted_id=_str(d.get("encryptedId")))


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
            name=_str(d.get("name")),
            author=_str(d.get("author")),
            subject=_str(d.get("subject")),
            from_name=_str(d.get("fromName")),
            from_email=_str(d.get("fromEmail")),
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
            id=_str(d.get("id")),
            name=_str(d.get("name")),
            url=_str(d.get("url")),
            code=_str(d.get("code")),
            type=_str(d.get("type")),
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
        "encrypted_id": _str(d.get("encryptedId")),
        "name": _str(d.get("name")),
        "scheduled_start_date": parse_api_datetime(d.get("scheduledStartDate"), zone),
        "type": _str(d.get("type")),
        "archive_link": _str(d.get("archiveLink")),
        "sent_count": _int(d.get("sentCount")),
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
            sender=_str(d.get("sender")),
            target_group=_str(d.get("targetGroup")),
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
    conversion_value: float | None

    @classmethod
    def from_json(cls, data: Any) -> Self:
        d = _obj(data)
        return cls(
            **{attr: _int(d.get(key)) for attr, key in _STATISTICS.items()},
            conversion_value=_float(d.get("conversionValue")),
        )


def _contact(d: Json) -> ContactIdentifier:
    return ContactIdentifier.from_json(d.get("contactIdentifier"))


@dataclass(frozen=True, slots=True)
class Recipient:
    contact: ContactIdentifier

    @classmethod
    def from_json(cls, data: Any, zone: tzinfo) -> Self:
        return cls(contact=_contact(_obj(data)))


@dataclass(frozen=True, slots=True)
class Open:
    contact: ContactIdentifier
    open_date: datetime | None

    @classmethod
    def from_json(cls, data: Any, zone: tzinfo) -> Self:
        d = _obj(data)
        return cls(contact=_contact(d), open_date=parse_api_datetime(d.get("openDate"), zone))


@dataclass(frozen=True, slots=True)
class Click:
    contact: ContactIdentifier
    click_date: datetime | None
    link_id: str | None

    @classmethod
    def from_json(cls, data: Any, zone: tzinfo) -> Self:
        d = _obj(data)
        return cls(
            contact=_contact(d),
            click_date=parse_api_datetime(d.get("clickDate"), zone),
            link_id=_str(d.get("linkId")),
        )


@dataclass(frozen=True, slots=True)
class Bounce:
    contact: ContactIdentifier
    bounce_date: datetime | None
    bounce_type: str | None

    @classmethod
    def from_json(cls, data: Any, zone: tzinfo) -> Self:
        d = _obj(data)
        return cls(
            contact=_contact(d),
            bounce_date=parse_api_datetime(d.get("bounceDate"), zone),
            bounce_type=_str(d.get("type")),
        )


@dataclass(frozen=True, slots=True)
class CampaignRecipient:
    contact: ContactIdentifier
    send_date: datetime | None
    campaign_subscription_id: str | None

    @classmethod
    def from_json(cls, data: Any, zone: tzinfo) -> Self:
        d = _obj(data)
        return cls(
            contact=_contact(d),
            send_date=parse_api_datetime(d.get("sendDate"), zone),
            campaign_subscription_id=_str(d.get("campaignSubscriptionId")),
        )


@dataclass(frozen=True, slots=True)
class CampaignOpen:
    contact: ContactIdentifier
    open_date: datetime | None
    campaign_subscription_id: str | None

    @classmethod
    def from_json(cls, data: Any, zone: tzinfo) -> Self:
        d = _obj(data)
        return cls(
            contact=_contact(d),
            open_date=parse_api_datetime(d.get("openDate"), zone),
            campaign_subscription_id=_str(d.get("campaignSubscriptionId")),
        )


@dataclass(frozen=True, slots=True)
class CampaignClick:
    contact: ContactIdentifier
    click_date: datetime | None
    link_id: str | None
    campaign_subscription_id: str | None

    @classmethod
    def from_json(cls, data: Any, zone: tzinfo) -> Self:
        d = _obj(data)
        return cls(
            contact=_contact(d),
            click_date=parse_api_datetime(d.get("clickDate"), zone),
            link_id=_str(d.get("linkId")),
            campaign_subscription_id=_str(d.get("campaignSubscriptionId")),
        )


@dataclass(frozen=True, slots=True)
class CampaignBounce:
    contact: ContactIdentifier
    bounce_date: datetime | None
    bounce_type: str | None
    campaign_subscription_id: str | None

    @classmethod
    def from_json(cls, data: Any, zone: tzinfo) -> Self:
        d = _obj(data)
        return cls(
            contact=_contact(d),
            bounce_date=parse_api_datetime(d.get("bounceDate"), zone),
            bounce_type=_str(d.get("type")),
            campaign_subscription_id=_str(d.get("campaignSubscriptionId")),
        )


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
            sent_date=parse_api_datetime(d.get("sentDate"), zone),
            opened=_bool(d.get("opened")),
            clicked=_bool(d.get("clicked")),
            bounce=_str(d.get("bounce")),
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
            id=_str(d.get("id")),
            name=_str(d.get("name")),
            form_sub_type=_str(d.get("formSubType")),
            form_state=_str(d.get("formState")),
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
            form_result_id=_str(d.get("formResultId")),
            submit_date=parse_api_datetime(d.get("submitDate"), zone),
            completed=_bool(d.get("completed")),
        )


@dataclass(frozen=True, slots=True)
class FormAnswer:
    """One answer; ``answer`` is kept exactly as the JSON had it (text, number, list, null)."""

    rank: int | None
    field_id: str | None
    description: str | None
    answer: str | int | float | bool | list[Any] | dict[str, Any] | None

    @classmethod
    def from_json(cls, data: Any) -> Self:
        d = _obj(data)
        return cls(
            rank=_int(d.get("rank")),
            field_id=_str(d.get("fieldId")),
            description=_str(d.get("description")),
            answer=d.get("answer"),
        )


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
            form_result_id=_str(d.get("formResultId")),
            submitted_at=parse_api_datetime(d.get("submittedAt"), zone),
            test_result=_bool(d.get("testResult")),
            completed=_bool(d.get("completed")),
            answers=tuple(FormAnswer.from_json(a) for a in _list(d.get("answers"))),
        )


@dataclass(frozen=True, slots=True)
class Trigger:
    encrypted_id: str | None
    name: str | None

    @classmethod
    def from_json(cls, data: Any) -> Self:
        d = _obj(data)
        return cls(encrypted_id=_str(d.get("encryptedId")), name=_str(d.get("name")))


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
            encrypted_id=_str(d.get("encryptedId")),
            name=_str(d.get("name")),
            active=_bool(d.get("active")),
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
        "encrypted_id": _str(d.get("encryptedId")),
        "name": _str(d.get("name")),
        "type": _str(d.get("type")),
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
            campaign_subscription_id=_str(d.get("campaignSubscriptionId")),
            sent_date=parse_api_datetime(d.get("sentDate"), zone),
            opened=_bool(d.get("opened")),
            clicked=_bool(d.get("clicked")),
            bounce=_str(d.get("bounce")),
        )
