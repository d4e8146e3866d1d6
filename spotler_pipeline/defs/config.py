"""Deployment settings read from the environment when the code location loads.

Partitions must exist before any run starts, so the account's time zone and the first
partition day are read at load time. Secrets are *not* read here: they reach the resources
through ``dg.EnvVar`` and are resolved only inside a run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_BASE_URL = "https://restapi.mailplus.nl/integrationservice-1.1.0"
DEFAULT_DUCKDB_PATH = "data/spotler.duckdb"
DEFAULT_TIMEZONE = "Europe/Amsterdam"
DEFAULT_PARTITIONS_START = "2025-01-01"

CREDENTIAL_ENV_VARS = ("SPOTLER_CONSUMER_KEY", "SPOTLER_CONSUMER_SECRET")


@dataclass(frozen=True)
class DeploymentSettings:
    timezone: str
    partitions_start: str
    interaction_refresh_days: int
    campaign_refresh_days: int
    snapshot_lookback_days: int

    @classmethod
    def from_env(cls) -> DeploymentSettings:
        return cls(
            timezone=os.environ.get("SPOTLER_TIMEZONE", DEFAULT_TIMEZONE),
            partitions_start=os.environ.get("SPOTLER_PARTITIONS_START", DEFAULT_PARTITIONS_START),
            interaction_refresh_days=_int("SPOTLER_INTERACTION_REFRESH_DAYS", 30),
            campaign_refresh_days=_int("SPOTLER_CAMPAIGN_REFRESH_DAYS", 3),
            snapshot_lookback_days=_int("SPOTLER_SNAPSHOT_LOOKBACK_DAYS", 60),
        )


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a whole number of days, got {raw!r}") from exc
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value
