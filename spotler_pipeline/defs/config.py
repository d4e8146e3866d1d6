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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from spotler_pipeline.client.settings import DEFAULT_BASE_URL as DEFAULT_BASE_URL
from spotler_pipeline.settings import DEFAULT_DUCKDB_PATH as DEFAULT_DUCKDB_PATH
from spotler_pipeline.settings import DEFAULT_TIMEZONE as DEFAULT_TIMEZONE
from spotler_pipeline.settings import TIMEZONE_ENV_VAR

DEFAULT_PARTITIONS_START = "2025-01-01"

CREDENTIAL_ENV_VARS = ("SPOTLER_CONSUMER_KEY", "SPOTLER_CONSUMER_SECRET")
PARTITIONS_START_ENV_VAR = "SPOTLER_PARTITIONS_START"
DUCKLAKE_CATALOG_ENV_VAR = "SPOTLER_DUCKLAKE_CATALOG"
DUCKLAKE_DATA_PATH_ENV_VAR = "SPOTLER_DUCKLAKE_DATA_PATH"

FILE_POOL = "spotler_duckdb"
LAKE_POOL = "spotler_api"

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")

T = TypeVar("T")


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
            timezone=_setting(
                TIMEZONE_ENV_VAR,
                DEFAULT_TIMEZONE,
                _zone,
                f"is not a known time zone: use an IANA name such as {DEFAULT_TIMEZONE!r}",
            ),
            partitions_start=_setting(
                PARTITIONS_START_ENV_VAR,
                DEFAULT_PARTITIONS_START,
                _iso_day,
                f"is not a day in the form YYYY-MM-DD (e.g. {DEFAULT_PARTITIONS_START})",
            ),
            interaction_refresh_days=_setting("SPOTLER_INTERACTION_REFRESH_DAYS", 30, *_DAYS),
            campaign_refresh_days=_setting("SPOTLER_CAMPAIGN_REFRESH_DAYS", 3, *_DAYS),
            snapshot_lookback_days=_setting("SPOTLER_SNAPSHOT_LOOKBACK_DAYS", 60, *_DAYS),
            lake=_raw(DUCKLAKE_CATALOG_ENV_VAR) is not None,
        )


def _raw(name: str) -> str | None:
    """The variable's value, or None when it is unset or blank (the default applies)."""
    raw = os.environ.get(name, "").strip()
    return raw or None


def _setting(name: str, default: T, parse: Callable[[str], T], expected: str) -> T:
    """The variable read by ``parse``, or ``default`` when it is unset. A value ``parse``
    refuses (``ValueError``) stops start-up with one line: the variable, its value and
    ``expected``."""
    raw = _raw(name)
    if raw is None:
        return default
    try:
        return parse(raw)
    except ValueError:
        # ``from None``: the one line says it all; the parser's traceback would only bury it.
        raise SettingsError(f"{name}={raw!r} {expected}") from None


def _zone(raw: str) -> str:
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, OSError) as exc:
        raise ValueError(raw) from exc
    return raw


def _iso_day(raw: str) -> str:
    if not _DAY.fullmatch(raw):
        raise ValueError(raw)
    date.fromisoformat(raw)
    return raw


def _whole_days(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError(raw)
    return value


#: How a number of days is read, and what its error says.
_DAYS = (_whole_days, "is not a whole number of days, at least 1")
