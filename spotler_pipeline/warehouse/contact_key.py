"""The warehouse's secret key for the ``<contact:…>`` tags that stand for contact ids.

Logs, errors and check results never show a contact's external id (often an e-mail address)
but a tag: a keyed hash of it (HMAC-SHA256). The key belongs to the warehouse, so a contact has
the same tag in every run that writes it, and people can follow one contact across events;
without the key, a list of addresses does not tell which tag is whose.

The key is generated once (32 random bytes from :mod:`secrets`) by the first run that needs it,
and kept in a file of its own, readable by its owner only (mode 0600), never in a table: the
readers' copy of the DuckDB file and a lake's catalog are read by analysts as data.

- DuckDB file: beside the file, ``<file>.contact-key`` (``data/spotler.duckdb.contact-key``).
- DuckLake with a local data path: beside the data folder, ``<folder>.contact-key``.
- Anything else (a lake whose files are in object storage), or to share one key between
  machines: the path given as ``SPOTLER_CONTACT_KEY_FILE``; every writer of the warehouse must
  see the same file. Moving a warehouse means moving its key file too, or its tags change.
"""

from __future__ import annotations

import os
import secrets
from contextlib import suppress
from pathlib import Path

from spotler_pipeline.warehouse.lake import LakeSettings

__all__ = ["KEY_FILE_ENV", "carry_contact_key", "contact_key_path", "load_contact_key"]

KEY_FILE_ENV = "SPOTLER_CONTACT_KEY_FILE"
SUFFIX = ".contact-key"
_KEY_BYTES = 32


def contact_key_path(
    database: str | os.PathLike[str], lake: LakeSettings | None, key_file: str | None = None
) -> Path:
    """Where the key of the warehouse (the DuckDB file ``database``, or ``lake``) lives:
    ``key_file`` when given, else beside the DuckDB file or the lake's local data folder."""
    if key_file:
        return Path(key_file)
    if lake is None:
        db = Path(database)
        return db.with_name(db.name + SUFFIX)
    data_path = lake.data_path
    if not data_path or "://" in data_path:
        raise ValueError(
            f"Set {KEY_FILE_ENV} to a file every writer of this lake shares: the key of its "
            "contact tags cannot be kept beside data files that are not in a local folder"
        )
    folder = Path(data_path.rstrip("/\\"))
    return folder.with_name(folder.name + SUFFIX)


def load_contact_key(path: Path) -> bytes:
    """The key in ``path``, created there (mode 0600) if there is none yet. Concurrent first
    runs agree on one key: the file appears whole, and only once."""
    if not path.exists():
        _create(path, secrets.token_hex(_KEY_BYTES) + "\n")
    text = path.read_text(encoding="ascii").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise ValueError(
            f"{path} is not a contact key (64 hex digits expected); restore it from a backup, "
            "or delete it to start new tags that do not match the old ones"
        )
    return key


def carry_contact_key(source: Path, target: Path) -> bool:
    """Give a warehouse moved from ``source``'s place to ``target``'s the key it had, so that
    its contacts keep their tags. False when there is no key at ``source``, or when ``target``
    already holds a key (which is left as it is)."""
    if not source.is_file() or target.exists():
        return False
    _create(target, source.read_text(encoding="ascii"))
    return True


def _create(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        # A hard link never replaces an existing file: of two first runs, one key wins.
        with suppress(FileExistsError):
            os.link(draft, path)
    finally:
        draft.unlink(missing_ok=True)
