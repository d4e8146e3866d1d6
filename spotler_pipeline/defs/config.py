"""Deployment settings read from the environment when the code location loads.

Partitions must exist before any run starts, so the account's time zone and the first
partition day are read at load time. Secrets are *not* read here: they reach the resources
through ``dg.EnvVar`` and are resolved only inside a run.

A value that cannot be used stops the load with a :class:`SettingsError` whose message is
one line naming the variable and the value.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from spotler_pipeline.client.settings import DEFAULT_BASE_URL as DEFAULT_BASE_URL

DEFAULT_DUCKDB_PATH = "data/spotler.duckdb"
DEFAULT_TIMEZONE = "Europe/Amsterdam"
DEFAULT_PARTITIONS_START = "2025-01-01"

CREDENTIAL_ENV_VARS = ("SPOTLER_CONSUMER_KEY", "SPOTLER_CONSUMER_SECRET")
TIMEZONE_ENV_VAR = "SPOTLER_TIMEZONE"
PARTITIONS_START_ENV_VAR = "SPOTLER_PARTITIONS_START"
DUCKLAKE_CATALOG_ENV_VAR = "SPOTLER_DUCKLAKE_CATALOG"
DUCKLAKE_DATA_PATH_ENV_VAR = "SPOTLER_DUCKLAKE_DATA_PATH"

FILE_POOL = "spotler_duckdb"
LAKE_POOL = "spotler_api"

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class SettingsError(ValueError):
    """A ``SPOTLER_*`` environment variable holds a value the code location cannot use."""


@dataclass(frozen=True)
class DeploymentSettings:
    timezone: str
    partitions_start: str
    interaction_refresh_days: int
    campaign_refresh_days: int
    snapshot_lookback_days: int
    #: the warehouse is a DuckLake (``SPOTLER_DUCKLAKE_CATALOG`` set), not the DuckDB file
    lake: bool = False

    @property
    def pool(self) -> str:
        """The concurrency pool of every writing step. The DuckDB file admits one writer, so
        steps take turns for it (pool ``spotler_duckdb``, limit 1); a lake takes concurrent
        writers, so steps only share the API budget (pool ``spotler_api``)."""
        return LAKE_POOL if self.lake else FILE_POOL

    @classmethod
    def from_env(cls) -> DeploymentSettings:
        return cls(
            timezone=_timezone(TIMEZONE_ENV_VAR, DEFAULT_TIMEZONE),
            partitions_start=_day(PARTITIONS_START_ENV_VAR, DEFAULT_PARTITIONS_START),
            interaction_refresh_days=_int("SPOTLER_INTERACTION_REFRESH_DAYS", 30),
            campaign_refresh_days=_int("SPOTLER_CAMPAIGN_REFRESH_DAYS", 3),
            snapshot_lookback_days=_int("SPOTLER_SNAPSHOT_LOOKBACK_DAYS", 60),
            lake=_raw(DUCKLAKE_CATALOG_ENV_VAR) is not None,
        )


def _raw(name: str) -> str | None:
    """The variable's value, or None when it is unset or blank (the default applies)."""
    raw = os.environ.get(name, "").strip()
    return raw or None


def _timezone(name: str, default: str) -> str:
    raw = _raw(name)
    if raw is None:
        return default
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # ``from None``: the one line says it all; zoneinfo's traceback would only bury it.
        raise SettingsError(
            f"{name}={raw!r} is not a known time zone: use an IANA name such as "
            f"{DEFAULT_TIMEZONE!r}"
        ) from None
    return raw


def _day(name: str, default: str) -> str:
    raw = _raw(name)
    if raw is None:
        return default
    try:
        if not _DAY.fullmatch(raw):
            raise ValueError
        date.fromisoformat(raw)
    except ValueError:
        raise SettingsError(
            f"{name}={raw!r} is not a day in the form YYYY-MM-DD (e.g. {default})"
        ) from None
    return raw


def _int(name: str, default: int) -> int:
    raw = _raw(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number of days") from None
    if value < 1:
        raise SettingsError(f"{name}={raw!r} must be at least 1 (days)")
    return value
