"""Upgrades of an older warehouse, in order. Each runs inside the one upgrade transaction.

Adding a step: bump :data:`CURRENT_VERSION`, append a :class:`Migration` whose ``apply``
changes what a generic step cannot know (renames, values for new columns of old rows).
Tables and columns that are simply new are created by ``ddl.ensure_schema`` after the
steps, and views are re-created from code whenever their SQL changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import duckdb

#: The schema version this release writes.
CURRENT_VERSION = 2


@dataclass(frozen=True)
class Migration:
    """Brings a warehouse of schema ``version - 1`` to ``version``."""

    version: int
    description: str
    apply: Callable[[duckdb.DuckDBPyConnection], None]


def _v2(conn: duckdb.DuckDBPyConnection) -> None:
    # A mailing stored by the first release was listed by Spotler when it was stored.
    conn.execute("ALTER TABLE spotler.mailings ADD COLUMN IF NOT EXISTS present BOOLEAN")
    conn.execute("UPDATE spotler.mailings SET present = true WHERE present IS NULL")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        2,
        "schema versions and the account fingerprint (spotler_meta); mailings.present "
        "(true for every stored mailing); views re-created from code",
        _v2,
    ),
)


def release() -> str:
    """This package's version, recorded with every upgrade."""
    try:
        return version("spotler_pipeline")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"
