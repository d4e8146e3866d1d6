"""Keep contact ids and credentials out of the logs of the libraries the client uses.

Our own messages are masked where they are made (:func:`~.errors.mask_personal_data`). The
libraries underneath log on their own: httpx writes every request's full URL at INFO
(``HTTP Request: GET https://…/contact/a%40b.nl/mailings "HTTP/1.1 200 OK"``), and oauthlib
writes the URL, the consumer key and the signature base string at DEBUG. None of that shows
by default, but it reaches a Dagster run's log the moment someone routes these loggers there
(``python_logs: managed_python_loggers`` in ``dagster.yaml``) or turns on DEBUG logging.

:func:`protect` puts a filter on those loggers that rewrites each record before any handler
sees it: contact ids in paths and e-mail addresses become their ``<contact:…>`` tags, and the
credentials of every client made in this process become ``****``. A record made while a client
sends (:func:`masking_with`) gets that client's tags, the same as its own messages and errors;
any other, tags under the process's random key.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from urllib.parse import quote

from spotler_pipeline.client.errors import mask_personal_data

__all__ = ["LIBRARY_LOGGERS", "masking_with", "protect"]

#: The loggers that write request URLs or signing material. A filter on a logger applies
#: only to records made by that very logger (not to its children), so each is named.
LIBRARY_LOGGERS = (
    "httpx",
    "oauthlib.oauth1.rfc5849",
    "oauthlib.oauth1.rfc5849.signature",
)
REDACTED = "****"
_MIN_SECRET = 4

_lock = threading.Lock()
_secrets: set[str] = set()
#: The contact key of the client sending in this thread (per context, not per process).
_contact_key: ContextVar[bytes | None] = ContextVar("spotler_contact_key", default=None)


class _MaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def _mask(text: str) -> str:
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        # oauthlib logs values as they are, percent-encoded once (normalized parameters)
        # and twice (inside the signature base string).
        once = quote(secret, safe="")
        for form in (quote(once, safe=""), once, secret):
            text = text.replace(form, REDACTED)
    return mask_personal_data(text, key=_contact_key.get())


_FILTER = _MaskingFilter()


def protect(*secrets: str) -> None:
    """Mask contact ids, and ``secrets`` (a client's consumer key and secret), in every record
    of :data:`LIBRARY_LOGGERS` from now on in this process. Safe to call again."""
    with _lock:
        # A value this short would mangle unrelated text; no real key is that short.
        _secrets.update(s for s in secrets if len(s) >= _MIN_SECRET)
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


@contextmanager
def masking_with(contact_key: bytes | None) -> Iterator[None]:
    """Within the block, records of :data:`LIBRARY_LOGGERS` made in this thread are masked
    with ``contact_key`` (the key of the client sending the request)."""
    token = _contact_key.set(contact_key)
    try:
        yield
    finally:
        _contact_key.reset(token)
