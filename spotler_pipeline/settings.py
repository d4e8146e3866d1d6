"""Where the warehouse is and which time zone its days are in: the settings the Dagster
code location, the notebook helper and the warehouse's own commands all read (no Dagster).
"""

from __future__ import annotations

import os
from pathlib import Path

DUCKDB_PATH_ENV_VAR = "SPOTLER_DUCKDB_PATH"
DEFAULT_DUCKDB_PATH = "data/spotler.duckdb"
TIMEZONE_ENV_VAR = "SPOTLER_TIMEZONE"
DEFAULT_TIMEZONE = "Europe/Amsterdam"


def duckdb_path() -> Path:
    """The DuckDB file warehouse: ``SPOTLER_DUCKDB_PATH``, or ``data/spotler.duckdb``."""
    return Path(os.environ.get(DUCKDB_PATH_ENV_VAR) or DEFAULT_DUCKDB_PATH)


def account_timezone() -> str:
    """The account's time zone (partition days are days there): ``SPOTLER_TIMEZONE``, or
    Europe/Amsterdam."""
    return os.environ.get(TIMEZONE_ENV_VAR) or DEFAULT_TIMEZONE
