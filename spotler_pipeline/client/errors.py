"""Every exception the client raises, in one place, and the masking of personal data in the
text it puts into exceptions and log lines.

All exceptions subclass :class:`SpotlerError` and carry ``endpoint``: the request path relative
to the base URL, never a credential, with contact ids masked.

Contact external ids are often e-mail addresses, and they travel in request paths (endpoints
6, 8, 10, 11 and 12), in retry warnings and in error texts, so in Dagster's event log. Every
text the client logs or raises goes through :func:`mask_personal_data`, which replaces each
contact id by a short pseudonym, ``<contact:3f2a9c1e>``: the first 8 hex digits of the
SHA-256 of the id. The same contact always gets the same tag, so the retries and failure of
one contact's request can be matched up, and whoever knows an address can find its lines with
:func:`contact_tag`; the log itself does not reveal the address.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from urllib.parse import quote, unquote

__all__ = [
    "SpotlerAuthError",
    "SpotlerError",
    "SpotlerNotFoundError",
    "SpotlerRequestError",
    "SpotlerResponseError",
    "SpotlerUnavailableError",
    "contact_ids_in",
    "contact_tag",
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
# An e-mail address anywhere in a text, as is or percent-encoded (``a%2Bb%40x.nl``): servers
# echo ids in their error messages, and a body value can end up in a parse error.
_EMAIL = re.compile(r"(?<![\w.%+&~-])[\w.%+&~-]+(?:@|%40)[\w-]+(?:\.[\w-]+)*")
_MIN_LITERAL_ID = 4  # shorter ids are not searched for in free text (they would mangle it)


def contact_tag(external_id: str) -> str:
    """The pseudonym logs and errors show for a contact: ``<contact:`` + 8 hex digits ``>``."""
    digest = hashlib.sha256(external_id.encode("utf-8")).hexdigest()
    return f"<contact:{digest[:8]}>"


def contact_ids_in(path: str) -> list[str]:
    """The contact external ids (decoded) in a request path, e.g. ``['a@b.nl']`` for
    ``/contact/a%40b.nl/mailings``."""
    return [unquote(m.group(2)) for regex in _CONTACT_IN_PATH for m in regex.finditer(path)]


def mask_personal_data(text: str, contact_ids: Iterable[str] = ()) -> str:
    """``text`` with every contact id replaced by its :func:`contact_tag`.

    Masked are: the contact segment of request paths, the given ``contact_ids`` wherever they
    occur (as is or percent-encoded; e.g. the ids of the request whose error message this is)
    and anything shaped like an e-mail address.
    """
    for external_id in sorted(set(contact_ids), key=len, reverse=True):
        if len(external_id) < _MIN_LITERAL_ID:
            continue
        tag = contact_tag(external_id)
        for form in {quote(external_id, safe=""), external_id}:
            text = text.replace(form, tag)
    for regex in _CONTACT_IN_PATH:
        text = regex.sub(lambda m: m.group(1) + contact_tag(unquote(m.group(2))), text)
    return _EMAIL.sub(lambda m: contact_tag(unquote(m.group(0))), text)


class SpotlerError(Exception):
    """Base class: something went wrong talking to Spotler."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        status: int | None = None,
        error_type: str | None = None,
    ) -> None:
        # The one gate for every error the client raises: whatever the raise site wrote,
        # neither the message nor the endpoint carries a contact id.
        ids = contact_ids_in(endpoint)
        message = mask_personal_data(message, ids)
        super().__init__(message)
        self.message = message
        self.endpoint = mask_personal_data(endpoint, ids)
        self.status = status
        self.error_type = error_type

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, endpoint={self.endpoint!r})"


class SpotlerAuthError(SpotlerError):
    """HTTP 401/403: the consumer key/secret were rejected. Never retried."""


class SpotlerRequestError(SpotlerError):
    """Another 4xx answer: the request itself was refused (e.g. ``INVALID_PARAMS``)."""


class SpotlerNotFoundError(SpotlerRequestError):
    """HTTP 404; ``error_type`` says what was missing (``MAILING_NOTFOUND``, ...)."""


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
    ) -> None:
        super().__init__(message, endpoint=endpoint, status=status, error_type=error_type)
        self.attempts = attempts


class SpotlerResponseError(SpotlerError):
    """A successful status with a body that is not the documented JSON, or a server that
    keeps repeating the same page."""
