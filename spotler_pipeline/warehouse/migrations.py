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
CURRENT_VERSION = 3


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


def database_type(conn: duckdb.DuckDBPyConnection) -> str | None:
    """``duckdb`` for a DuckDB file (or memory), ``ducklake`` for a lake catalog."""
    row = conn.execute(
        "SELECT type FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()
    return None if row is None else str(row[0])


def _v3(conn: duckdb.DuckDBPyConnection) -> None:
    # Releases up to 0.2 stored conversionValue, a count of cents, in a DOUBLE named
    # conversion_value: the same numbers move to an exact BIGINT named for its unit.
    table = "spotler.mailing_stats_snapshots"
    cents = "CAST(round(conversion_value) AS BIGINT)"
    have = {
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'spotler' "
            "AND table_name = 'mailing_stats_snapshots' AND table_catalog = current_database()"
        ).fetchall()
    }
    if "conversion_value" not in have:
        return
    if database_type(conn) == "ducklake":
        # DuckLake changes a column's type only to a wider one of the same kind; a DuckDB
        # file refuses to drop a column updated in the same transaction. Hence two ways.
        conn.execute(f"ALTER TABLE {table} ADD COLUMN conversion_value_cents BIGINT")
        conn.execute(f"UPDATE {table} SET conversion_value_cents = {cents}")
        conn.execute(f"ALTER TABLE {table} DROP COLUMN conversion_value")
    else:
        conn.execute(
            f"ALTER TABLE {table} ALTER COLUMN conversion_value SET DATA TYPE BIGINT USING {cents}"
        )
        conn.execute(
            f"ALTER TABLE {table} RENAME COLUMN conversion_value TO conversion_value_cents"
        )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        2,
        "schema versions and the account fingerprint (spotler_meta); mailings.present "
        "(true for every stored mailing); views re-created from code",
        _v2,
    ),
    Migration(
        3,
        "mailing_stats_snapshots.conversion_value (DOUBLE) becomes conversion_value_cents "
        "(BIGINT, the same numbers: Spotler reports cents); open figures say total vs rendered",
        _v3,
    ),
)


def release() -> str:
    """This package's version, recorded with every upgrade."""
    try:
        return version("spotler_pipeline")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"
