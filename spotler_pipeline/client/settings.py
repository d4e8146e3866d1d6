"""Configuration of :class:`~spotler_pipeline.client.SpotlerClient`."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["DEFAULT_BASE_URL", "MAX_PAGE_SIZE", "ClientSettings"]

DEFAULT_BASE_URL = "https://restapi.mailplus.nl/integrationservice-1.1.0"
MAX_PAGE_SIZE = 10_000


@dataclass(frozen=True)
class ClientSettings:
    """Credentials and tuning for one Spotler account.

    ``consumer_secret`` and ``contact_key`` are kept out of ``repr`` so settings can be logged
    safely.
    """

    consumer_key: str
    consumer_secret: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    timezone: str = "Europe/Amsterdam"
    page_size: int = MAX_PAGE_SIZE
    timeout: float = 60.0
    max_concurrent_requests: int = 8
    max_requests_per_second: float | None = None
    max_attempts: int = 6
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    #: Longest ``Retry-After`` honoured (seconds); a server asking for more fails the request
    #: at once, saying so, rather than holding a run for that long.
    max_retry_after: float = 300.0
    #: Secret key of the ``<contact:…>`` tags that stand for contact ids in logs and errors
    #: (:func:`~spotler_pipeline.client.errors.contact_tag`); None: a random key per process.
    contact_key: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.consumer_key or not self.consumer_secret:
            raise ValueError(
                "consumer key and secret are required "
                "(SPOTLER_CONSUMER_KEY / SPOTLER_CONSUMER_SECRET)"
            )
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an http(s) URL, got {self.base_url!r}")
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise ValueError(f"unknown time zone {self.timezone!r}") from exc
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")
        if self.max_concurrent_requests < 1:
            raise ValueError("max_concurrent_requests must be at least 1")
        if self.max_requests_per_second is not None and self.max_requests_per_second <= 0:
            raise ValueError("max_requests_per_second must be positive (or None for no limit)")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.backoff_initial < 0 or self.backoff_max < 0:
            raise ValueError("back-off delays must not be negative")
        if self.max_retry_after < 0:
            raise ValueError("max_retry_after must not be negative")

    @property
    def host(self) -> str:
        """Host (and port, if given) of ``base_url``: what error messages name, never the
        whole URL."""
        parts = urlsplit(self.base_url)
        host = parts.hostname or ""
        try:
            port = parts.port
        except ValueError:  # not a number: name the host alone
            port = None
        return f"{host}:{port}" if port else host
