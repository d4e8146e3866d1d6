"""Every exception the client raises, in one place.

All of them subclass :class:`SpotlerError` and carry ``endpoint``: the request path relative
to the base URL (with the ids as sent), never a credential.
"""

from __future__ import annotations

__all__ = [
    "SpotlerAuthError",
    "SpotlerError",
    "SpotlerNotFoundError",
    "SpotlerRequestError",
    "SpotlerResponseError",
    "SpotlerUnavailableError",
]


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
        super().__init__(message)
        self.message = message
        self.endpoint = endpoint
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
