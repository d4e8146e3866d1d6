"""Errors a user can act on fail the step with our one line, not a stack trace to dig in.

The client and the warehouse raise typed errors whose message already says what happened and
what to do (credentials rejected, Spotler unreachable, the file held by another process,
another account's data, a warehouse from a newer release or the first release's file).
:func:`failing_plainly` turns them into ``dg.Failure``: Dagster then shows the message as the
failure's description, with the error's own details as metadata, and without the chained
exceptions (HTTP library, DuckDB) behind it. Anything else is a bug and keeps its full stack
trace; only its message is masked when it holds personal data (an e-mail address, a contact
in a request path): Dagster stores a failure's message in the event log, and a contact
id must never be there (:class:`MaskedError`).

Dagster attaches the frames between its step executor and the ``raise`` to every failure,
``dg.Failure`` included (no API leaves them out); what ``failing_plainly`` removes is our
code's and the libraries' traceback, so the message is the failure's first line.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from spotler_pipeline.client.errors import (
    SpotlerAuthError,
    SpotlerError,
    SpotlerUnavailableError,
    mask_personal_data,
)
from spotler_pipeline.warehouse.account import AccountMismatchError
from spotler_pipeline.warehouse.connection import WarehouseLockedError
from spotler_pipeline.warehouse.ddl import NewerWarehouseError
from spotler_pipeline.warehouse.legacy import LegacyFileError

#: Errors whose message tells the user what to do; retrying the run unchanged cannot help.
FIX_FIRST: tuple[type[Exception], ...] = (
    SpotlerAuthError,
    AccountMismatchError,
    NewerWarehouseError,
    LegacyFileError,
)
#: Errors whose message tells the user what to do, and that may pass by themselves (a retry
#: policy may run the step again).
MAY_PASS: tuple[type[Exception], ...] = (SpotlerUnavailableError, WarehouseLockedError)


def as_failure(exc: Exception, *, allow_retries: bool) -> dg.Failure:
    """``exc``'s message as a step failure, its details (never a credential or a contact id:
    client errors mask them) as metadata."""
    metadata: dict[str, dg.RawMetadataValue] = {"error": type(exc).__name__}
    if isinstance(exc, SpotlerError):
        metadata["endpoint"] = exc.endpoint
        if exc.status is not None:
            metadata["http_status"] = exc.status
        if exc.error_type:
            metadata["spotler_error_type"] = exc.error_type
    holder = getattr(exc, "holder", None)
    if holder:
        metadata["held_by"] = holder
    return dg.Failure(description=str(exc), metadata=metadata, allow_retries=allow_retries)


class MaskedError(Exception):
    """An unexpected error whose message held personal data, raised in its place: the same
    stack trace, the original type's name and message with every contact replaced by its
    tag, and no chained exceptions (whose messages may hold the same data)."""


@contextmanager
def failing_plainly(contact_key: bytes | None = None) -> Iterator[None]:
    """Inside: an error a user can act on fails the step with its message only; any other
    error whose message names a contact is raised again as a :class:`MaskedError` (contacts
    tagged under ``contact_key``, the warehouse's, so that tags match the checks')."""
    try:
        yield
    except FIX_FIRST as exc:
        raise as_failure(exc, allow_retries=False) from None
    except MAY_PASS as exc:
        raise as_failure(exc, allow_retries=True) from None
    except dg.Failure:
        raise  # our own, already written for the event log
    except Exception as exc:
        text = str(exc)
        masked = mask_personal_data(text, key=contact_key)
        if masked == text:
            raise
        error = MaskedError(f"{type(exc).__name__}: {masked}")
        raise error.with_traceback(exc.__traceback__) from None
