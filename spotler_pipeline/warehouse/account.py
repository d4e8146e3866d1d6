"""Which Spotler account a warehouse holds, so two accounts are never mixed in one file.

The first write records the account's fingerprint (a short hash of the OAuth consumer key,
never the key itself) in ``spotler_meta.account``; every later write checks it inside its
transaction. A run against another account (another key, or a simulator with another seed)
fails before it changes a row, with a message that says what to do.
"""

from __future__ import annotations

import hashlib

import duckdb

META_SCHEMA = "spotler_meta"


class AccountMismatchError(RuntimeError):
    """A write would mix the data of two Spotler accounts in one warehouse."""


def account_fingerprint(consumer_key: str) -> str:
    """A stable, non-reversible id of the account behind ``consumer_key`` (16 hex digits)."""
    return hashlib.sha256(consumer_key.encode()).hexdigest()[:16]


def claim_account(conn: duckdb.DuckDBPyConnection, fingerprint: str) -> None:
    """Record ``fingerprint`` as the warehouse's account, or check it is the recorded one.

    Call inside the write's transaction, so a refused write changes nothing.
    """
    row = conn.execute(
        f"SELECT fingerprint, claimed_at FROM {META_SCHEMA}.account LIMIT 1"
    ).fetchone()
    if row is None:
        conn.execute(
            f"INSERT INTO {META_SCHEMA}.account VALUES (?, current_timestamp)", [fingerprint]
        )
        return
    if row[0] != fingerprint:
        raise AccountMismatchError(
            f"This warehouse holds another Spotler account's data (account {row[0]}, first "
            f"written {row[1]:%Y-%m-%d %H:%M}); this run's consumer key belongs to account "
            f"{fingerprint}. Nothing was written: mixing two accounts would make every total "
            "wrong. Point SPOTLER_DUCKDB_PATH (or the lake settings) at another warehouse for "
            "this account. If it is the same account under a new key, adopt the key with "
            "`spotler-pipeline adopt-account` first."
        )


def recorded_account(conn: duckdb.DuckDBPyConnection) -> str | None:
    """The warehouse's account fingerprint, or ``None`` before the first write."""
    row = conn.execute(f"SELECT fingerprint FROM {META_SCHEMA}.account LIMIT 1").fetchone()
    return None if row is None else str(row[0])


def adopt_account(conn: duckdb.DuckDBPyConnection, fingerprint: str) -> str | None:
    """Make ``fingerprint`` the warehouse's account (after a key rotation); returns the old."""
    old = recorded_account(conn)
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(f"DELETE FROM {META_SCHEMA}.account")
        conn.execute(
            f"INSERT INTO {META_SCHEMA}.account VALUES (?, current_timestamp)", [fingerprint]
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return old
