"""Every exception the client raises, in one place, and the masking of personal data in the
text it puts into exceptions and log lines.

All exceptions subclass :class:`SpotlerError` and carry ``endpoint``: the request path relative
to the base URL, never a credential, with contact ids masked.

Contact external ids are often e-mail addresses, and they travel in request paths (endpoints
6, 8, 10, 11 and 12), in retry warnings and in error texts, so in Dagster's event log. Every
text the client logs or raises goes through :func:`mask_personal_data`, which replaces each
contact id by a short pseudonym, ``<contact:3f2a9c1e5b7d>``: the first 12 hex digits of the
HMAC-SHA256 of the id under a secret key (``ClientSettings.contact_key``; the pipeline uses
its warehouse's key, so a contact has the same tag in every run and can be followed across
events). Without the key a tag cannot be computed, so a list of addresses does not reverse it;
whoever holds the key finds a contact's lines with :func:`contact_tag`. Without a key of its
own the client uses one drawn at random for the process: tags are then stable only within it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import quote, unquote

__all__ = [
    "ERROR_TYPES",
    "ErrorType",
    "SpotlerAuthError",
    "SpotlerConflictError",
    "SpotlerContactNotFoundError",
    "SpotlerError",
    "SpotlerInvalidRequestError",
    "SpotlerNotFoundError",
    "SpotlerRequestError",
    "SpotlerResponseError",
    "SpotlerUncertainError",
    "SpotlerUnavailableError",
    "contact_ids_in",
    "advice_for",
    "contact_tag",
    "error_for",
    "mask_personal_data",
]

# Where a contact's external id sits in a request path (percent-encoded, one segment):
# /mailing/{id}/opens/{contact} (6), /mailing/{id}/clicks/{contact} (8) and
# /contact/{contact}/... (10, 11, 12).
_SEGMENT = r"[\w.~%+&@-]+"
_CONTACT_IN_PATH = (
    re.compile(rf"(/mailing/{_SEGMENT}/(?:opens|clicks)/)({_SEGMENT})"),
    re.compile(rf"(/contact/)({_SEGMENT})"),
)
# The same paths inside a percent-encoded URL, as OAuth's signature base string holds them
# (``%2Fcontact%2FK0042%2Fmailings``, an address in it encoded twice).
_SLASH = r"%(?:25)?2F"
_ENCODED_SEGMENT = rf"(?:(?!{_SLASH})[\w.~%+&@-])+"
_CONTACT_IN_ENCODED_PATH = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        rf"({_SLASH}mailing{_SLASH}{_ENCODED_SEGMENT}{_SLASH}(?:opens|clicks){_SLASH})"
        rf"({_ENCODED_SEGMENT})",
        rf"({_SLASH}contact{_SLASH})({_ENCODED_SEGMENT})",
    )
)
# An e-mail address anywhere in a text, as is or percent-encoded (``a%2Bb%40x.nl``): servers
# echo ids in their error messages, and a body value can end up in a parse error.
_EMAIL = re.compile(r"(?<![\w.%+&~-])[\w.%+&~-]+(?:@|%40)[\w-]+(?:\.[\w-]+)*")
_MIN_LITERAL_ID = 4  # shorter ids are not searched for in free text (they would mangle it)
#: Hex digits of a tag: 48 bits, so two of a million contacts share a tag by chance with a
#: probability of about 0.2%.
TAG_DIGITS = 12
#: The key of a client given none: tags unreadable without it, stable within this process.
_PROCESS_KEY = secrets.token_bytes(32)


def contact_tag(external_id: str, key: bytes | None = None) -> str:
    """The pseudonym logs, errors and check results show for a contact under ``key`` (the
    process's random key by default): ``<contact:`` + 12 hex digits ``>``."""
    digest = hmac.new(key or _PROCESS_KEY, external_id.encode("utf-8"), hashlib.sha256)
    return f"<contact:{digest.hexdigest()[:TAG_DIGITS]}>"


def contact_ids_in(path: str) -> list[str]:
    """The contact external ids (decoded) in a request path, e.g. ``['a@b.nl']`` for
    ``/contact/a%40b.nl/mailings``."""
    return [unquote(m.group(2)) for regex in _CONTACT_IN_PATH for m in regex.finditer(path)]


def mask_personal_data(text: str, contact_ids: Iterable[str] = (), key: bytes | None = None) -> str:
    """``text`` with every contact id replaced by its :func:`contact_tag` under ``key``.

    Masked are: the contact segment of request paths, the given ``contact_ids`` wherever they
    occur (as is or percent-encoded; e.g. the ids of the request whose error message this is)
    and anything shaped like an e-mail address.
    """
    for external_id in sorted(set(contact_ids), key=len, reverse=True):
        if len(external_id) < _MIN_LITERAL_ID:
            continue
        tag = contact_tag(external_id, key)
        for form in {quote(external_id, safe=""), external_id}:
            text = text.replace(form, tag)
    for regex in _CONTACT_IN_PATH:
        text = regex.sub(lambda m: m.group(1) + contact_tag(unquote(m.group(2)), key), text)
    for regex in _CONTACT_IN_ENCODED_PATH:
        text = regex.sub(lambda m: m.group(1) + contact_tag(_decoded(m.group(2)), key), text)
    return _EMAIL.sub(lambda m: contact_tag(unquote(m.group(0)), key), text)


def _decoded(segment: str) -> str:
    """A path segment percent-decoded as often as it was encoded."""
    for _ in range(3):
        decoded = unquote(segment)
        if decoded == segment:
            break
        segment = decoded
    return segment


class SpotlerError(Exception):
    """Base class: something went wrong talking to Spotler.

    The hierarchy, like httpx's, sorts failures by what the caller does about them::

        SpotlerError
        ├── SpotlerAuthError          credentials rejected (401/403, AUTH_NOT_FOUND, ...)
        ├── SpotlerRequestError       the request was refused as asked (other 4xx)
        │   ├── SpotlerInvalidRequestError    a value Spotler does not accept (INVALID_*)
        │   ├── SpotlerConflictError          clashes with what the account holds
        │   └── SpotlerNotFoundError          no such item (404, *_NOT_FOUND, *_NOTFOUND)
        │       └── SpotlerContactNotFoundError   no such contact: its history is empty
        ├── SpotlerUnavailableError   429/5xx/network failures outlasted every retry
        └── SpotlerResponseError      a 2xx body that is not the documented JSON

    ``error_type`` is Spotler's ``errorType`` (one of :data:`ERROR_TYPES`' keys, or a value
    this client does not know, or ``None``); ``status`` the HTTP status.
    """

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        status: int | None = None,
        error_type: str | None = None,
        api_message: str | None = None,
        contact_key: bytes | None = None,
    ) -> None:
        # The one gate for every error the client raises: whatever the raise site wrote,
        # neither the message nor the endpoint carries a contact id (tags under the client's
        # ``contact_key``; one already there is left as it is).
        ids = contact_ids_in(endpoint)
        message = mask_personal_data(message, ids, contact_key)
        super().__init__(message)
        self.message = message
        self.endpoint = mask_personal_data(endpoint, ids, contact_key)
        self.status = status
        self.error_type = error_type
        #: Spotler's own ``message`` of an error answer (masked), when it sent one.
        self.api_message = (
            None if api_message is None else mask_personal_data(api_message, ids, contact_key)
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, endpoint={self.endpoint!r})"


class SpotlerAuthError(SpotlerError):
    """The consumer key/secret were rejected (401/403, ``AUTH_NOT_FOUND``,
    ``NOT_AUTHORIZED``). Never retried."""


class SpotlerRequestError(SpotlerError):
    """Another 4xx answer: the request itself was refused. Retrying it unchanged will not
    help."""


class SpotlerInvalidRequestError(SpotlerRequestError):
    """Spotler does not accept a value of the request (``INVALID_PARAMS``,
    ``INVALID_PROPERTY``, ``INVALID_MAILING``, ``INVALID_STATE``)."""


class SpotlerConflictError(SpotlerRequestError):
    """The request clashes with what the account holds (an existing contact or name, a
    contact who opted out, an ambiguous id)."""


class SpotlerNotFoundError(SpotlerRequestError):
    """No such item (HTTP 404, or an ``errorType`` saying so); ``error_type`` says which
    kind (``MAILING_NOTFOUND``, ``FORM_NOT_FOUND``, ...). Usually deleted in Spotler since it
    was listed."""


class SpotlerContactNotFoundError(SpotlerNotFoundError):
    """``CONTACT_NOT_FOUND``: the account has no contact with this external id (deleted, or
    never a contact), so it has no history, opens or clicks to report."""


class SpotlerUnavailableError(SpotlerError):
    """429/5xx/timeouts/dropped connections persisted through every retry."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        attempts: int,
        status: int | None = None,
        error_type: str | None = None,
        contact_key: bytes | None = None,
    ) -> None:
        super().__init__(
            message,
            endpoint=endpoint,
            status=status,
            error_type=error_type,
            contact_key=contact_key,
        )
        self.attempts = attempts


class SpotlerResponseError(SpotlerError):
    """A successful status with a body that is not the documented JSON, or a server that
    keeps repeating the same page."""


@dataclass(frozen=True, slots=True)
class ErrorType:
    """What the client makes of one of Spotler's ``errorType`` values: the exception it
    raises and what the person reading it should do."""

    error: type[SpotlerError]
    advice: str


_CREDENTIALS = "SPOTLER_CONSUMER_KEY and SPOTLER_CONSUMER_SECRET"

#: Every ``errorType`` of the contract's ``ErrorType`` enum, by name.
ERROR_TYPES: Mapping[str, ErrorType] = MappingProxyType(
    {
        "AUTH_NOT_FOUND": ErrorType(
            SpotlerAuthError,
            f"Spotler knows no API consumer with this key: check {_CREDENTIALS} (the key and "
            "secret of a REST API consumer of this account)",
        ),
        "NOT_AUTHORIZED": ErrorType(
            SpotlerAuthError,
            f"Spotler rejected the consumer key/secret: check {_CREDENTIALS}, and that the "
            "consumer may use this part of the API",
        ),
        "INVALID_PARAMS": ErrorType(
            SpotlerInvalidRequestError,
            "Spotler refused a parameter of the request: check the ids and dates given; if "
            "they are right, the client sent something the contract does not allow (report it)",
        ),
        "INVALID_PROPERTY": ErrorType(
            SpotlerInvalidRequestError,
            "a contact property is unknown to the account or of the wrong type: check the "
            "property names against the account's contact fields",
        ),
        "INVALID_MAILING": ErrorType(
            SpotlerInvalidRequestError,
            "this mailing cannot be used for the request (e.g. not sent, or of another type): "
            "check the mailing id",
        ),
        "INVALID_STATE": ErrorType(
            SpotlerInvalidRequestError,
            "the item is not in a state that allows this request (e.g. a campaign that is not "
            "active): retry once it is",
        ),
        "NAME_ALREADY_IN_USE": ErrorType(
            SpotlerConflictError, "the account already has an item of this name: choose another"
        ),
        "ID_NOTUNIQUE": ErrorType(
            SpotlerConflictError,
            "the id matches more than one item in the account: use an id that is unique",
        ),
        "CONTACT_ALREADY_EXISTS": ErrorType(
            SpotlerConflictError,
            "a contact with this external id exists already: update it instead of adding it",
        ),
        "CONTACT_OPTOUT": ErrorType(
            SpotlerConflictError,
            "the contact opted out and Spotler will not send to it: leave it out of the action",
        ),
        "CONTACT_NOT_FOUND": ErrorType(
            SpotlerContactNotFoundError,
            "the account has no contact with this external id (deleted, or never a contact): "
            "its history is empty",
        ),
        "MAILING_NOTFOUND": ErrorType(
            SpotlerNotFoundError,
            "no mailing with this id: deleted in Spotler since it was listed, or a wrong id",
        ),
        "CAMPAIGN_NOTFOUND": ErrorType(
            SpotlerNotFoundError,
            "no campaign (or campaign message) with this id: deleted in Spotler since it was "
            "listed, or a wrong id",
        ),
        "TRIGGER_NOTFOUND": ErrorType(
            SpotlerNotFoundError,
            "no campaign trigger with this id: check the trigger's encrypted id in the campaign",
        ),
        "FORM_NOT_FOUND": ErrorType(
            SpotlerNotFoundError,
            "no form with this id: deleted in Spotler since it was listed, or a wrong id",
        ),
        "FORMRESULT_NOT_FOUND": ErrorType(
            SpotlerNotFoundError,
            "no submission with this id in the form: deleted in Spotler, or a wrong id",
        ),
        "PRODUCT_NOTFOUND": ErrorType(
            SpotlerNotFoundError,
            "no product with this id in the account's eCommerce catalogue: check the product id",
        ),
        "ORDER_NOTFOUND": ErrorType(
            SpotlerNotFoundError,
            "no eCommerce order with this id in the account: check the order id",
        ),
        "RESOURCE_NOT_FOUND": ErrorType(
            SpotlerNotFoundError,
            "Spotler has no such resource: check SPOTLER_BASE_URL (it ends in "
            "/integrationservice-1.1.0) and the id in the request",
        ),
        "BACKEND_EXCEPTION": ErrorType(
            SpotlerUnavailableError,
            "Spotler failed internally: retry later, and ask Spotler's support if it persists",
        ),
    }
)


def advice_for(error_type: str | None) -> str:
    """What to do about Spotler's ``error_type``: its :data:`ERROR_TYPES` advice, a plain
    statement for a value the contract does not name, or ``""`` for none."""
    if not error_type:
        return ""
    known = ERROR_TYPES.get(error_type)
    if known is not None:
        return known.advice
    return (
        f"errorType {error_type} is not in Spotler's published contract: act on the message, "
        "and report the errorType if the message is unclear"
    )


def error_for(
    status: int,
    error_type: str | None,
    detail: str,
    *,
    endpoint: str,
    api_message: str | None = None,
    contact_key: bytes | None = None,
) -> SpotlerError:
    """The typed error for a request Spotler refused and that is not retried, its message
    ``detail`` followed by what to do. 401/403 are always :class:`SpotlerAuthError`;
    otherwise Spotler's ``error_type`` picks the class where :data:`ERROR_TYPES` names it,
    else the status does (404 :class:`SpotlerNotFoundError`, other :class:`SpotlerRequestError`).
    """
    known = ERROR_TYPES.get(error_type or "")
    error: type[SpotlerError]
    if status in (401, 403):
        error = SpotlerAuthError
        if known is None or known.error is not SpotlerAuthError:
            known = ERROR_TYPES["NOT_AUTHORIZED"]
        advice = known.advice
    elif known is not None:
        error, advice = known.error, known.advice
    else:
        error = SpotlerNotFoundError if status == 404 else SpotlerRequestError
        advice = advice_for(error_type)
    message = f"{detail}; {advice}" if advice else detail
    if issubclass(error, SpotlerUnavailableError):
        return error(
            message,
            endpoint=endpoint,
            attempts=1,
            status=status,
            error_type=error_type,
            contact_key=contact_key,
        )
    return error(
        message,
        endpoint=endpoint,
        status=status,
        error_type=error_type,
        api_message=api_message,
        contact_key=contact_key,
    )


class SpotlerUncertainError(SpotlerError):
    """A write went out but its answer was lost (read timeout, dropped connection): Spotler
    may or may not have acted on it, so it is not sent again automatically."""
