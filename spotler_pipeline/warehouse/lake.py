"""Connect to the DuckLake warehouse: a catalog database (PostgreSQL) plus Parquet files.

Configured by ``SPOTLER_DUCKLAKE_CATALOG`` (what DuckLake's ``ATTACH 'ducklake:…'`` takes, e.g.
``postgres:dbname=spotler_lake host=127.0.0.1 port=5432 user=spotler``) and
``SPOTLER_DUCKLAKE_DATA_PATH`` (where the Parquet files go). :func:`open_lake` returns a DuckDB
connection with the lake attached as :data:`LAKE_ALIAS` and selected with ``USE``, so the
warehouse's tables are ``spotler.<table>`` exactly as with the file (``current_database()`` is
the lake, which the DDL helpers rely on).

Offline extensions
    DuckDB would download ``ducklake`` and ``postgres_scanner`` from its own server on first
    use. Instead they are loaded from the wheels ``duckdb-extension-ducklake`` and
    ``duckdb-extension-postgres-scanner``
    (``<package>/extensions/v<duckdb>/<name>.duckdb_extension``, built for DuckDB 1.5.5 only)
    with ``LOAD '<path>'``; ``autoinstall_known_extensions`` and
    ``autoload_known_extensions`` are off, so nothing ever tries the network. Without the
    wheel matching the installed DuckDB, a plain ``LOAD <name>`` (an extension the user
    installed themselves) is the fallback, then a clear error.

    Readers (``read_only``: notebooks, checks) load them with DuckDB's signature check, so
    their connections never run an unsigned file. Writers skip that check, which costs a
    noticeable part of a connection's start-up, only after each file matched the SHA-256
    that pip recorded for it when it installed the wheel (the distribution's ``RECORD``);
    a file changed or damaged since then is refused.

Secrets
    A password in the catalog string (``password=…`` or ``postgresql://user:pw@…``) is taken
    out of it and handed to DuckDB as a temporary ``postgres`` secret. DuckDB prints the
    connection string in its errors ("Unable to connect to Postgres at …") and in
    ``duckdb_databases()``; with the password in a secret it appears in neither (secrets show
    as ``password=redacted``). Errors raised here are redacted again for good measure.

What DuckLake (extension ``d8a1881e``, format 1.0, DuckDB 1.5.5) does, found with the tests in
``spotler_pipeline_tests/test_lake_connect.py`` against PostgreSQL 15:

- **Conflicts** are detected at ``COMMIT`` (never a lock wait). The loser's ``COMMIT`` raises
  ``duckdb.TransactionException`` with the text ``"TransactionContext Error: Failed to commit:
  Failed to commit DuckLake transaction.\\nTransaction conflict - attempting to insert into
  table with index "2" - but another transaction has deleted from it"`` (variants: "…delete
  from table … has inserted into it", "…delete from file with index … has deleted from it",
  "…create table "x" in schema "spotler" - but this table has been created by another
  transaction already"). The transaction is already rolled back when it is raised: a
  following ``ROLLBACK`` fails with "cannot rollback - no transaction is active", so a
  ``try: …; COMMIT / except: ROLLBACK`` wrapper must not let that second error replace the
  first. :func:`is_conflict` recognises the error; :func:`retry_on_conflict` re-runs a whole
  transaction. Granularity is the table, not the partition: two transactions that both
  insert into a table commit fine, but one that deletes from a table conflicts with any
  concurrent one that inserts into or deletes from it, even on other days (also with the
  table ``PARTITIONED BY`` the day). So concurrent replaces of different partitions of one
  table serialise at commit through retries; the fetching before them still overlaps.
  Writes to different tables never conflict. Deletes matching no rows do not count.
- **Supported as the warehouse code uses them**: ``COMMENT ON TABLE/COLUMN/VIEW`` (read back
  through ``duckdb_tables()``/``duckdb_columns()``), ``CREATE OR REPLACE VIEW`` (stored in the
  catalog, bound on use), ``DELETE … WHERE`` with ``IN (SELECT unnest(['…']::VARCHAR[]))``,
  ``DELETE … t WHERE EXISTS (…)``, ``INSERT … SELECT`` from ``read_parquet`` of the staged
  files, ``CREATE OR REPLACE TEMP TABLE`` (lives in DuckDB's ``temp``
  catalog, not the lake), ``UPDATE temp_t SET … FROM lake_t`` and ``UPDATE lake_t SET … FROM
  temp_t``, ``ALTER TABLE … ADD COLUMN / RENAME COLUMN``, ``NOT NULL`` and ``DEFAULT``,
  ``VARCHAR[]``, ``JSON`` and ``TIMESTAMPTZ`` columns, ``BEGIN``/``COMMIT``/``ROLLBACK``,
  ``information_schema`` with ``table_catalog = current_database()``, ``CHECKPOINT``
  (on a lake it runs DuckLake's maintenance: flushing inlined rows, merging small files).
- **Not supported**: ``PRIMARY KEY``/``UNIQUE`` constraints (``NotImplementedException``:
  "PRIMARY KEY/UNIQUE constraints are not supported in DuckLake"), hence no ``INSERT OR
  REPLACE``/``ON CONFLICT``; indexes.
- **Time travel**: ``SELECT … FROM spotler.mailings AT (VERSION => 3)`` and ``AT (TIMESTAMP =>
  now() - INTERVAL 1 HOUR)``; ``FROM lake.snapshots()`` lists the snapshots (id, time,
  schema version, changes); ``FROM lake.current_snapshot()``; a whole lake as of a snapshot:
  :func:`open_lake` with ``snapshot_version=`` / ``snapshot_time=`` (``ATTACH … (READ_ONLY,
  SNAPSHOT_VERSION n | SNAPSHOT_TIME '…')``). A time before the first snapshot is an error
  ("No snapshot found at timestamp …").
- **Other behaviour**: inserts of up to 10 rows are "inlined" into the catalog database
  instead of a Parquet file (``ducklake_default_data_inlining_row_limit``). Attaching with a
  ``DATA_PATH`` different from the one the lake was created with fails ("DATA_PATH parameter
  … does not match existing data path in the catalog"); readers may leave it out. A
  ``READ_ONLY`` attach of a catalog database with no lake in it fails ("… does not exist -
  and creating a new DuckLake is explicitly disabled"); writing through a read-only attach
  raises ``InvalidInputException`` ("… attached in read-only mode!"). The catalog database
  itself (e.g. ``spotler_lake``) must exist; DuckLake creates its tables in it.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import importlib.metadata
import importlib.resources
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import duckdb

from spotler_pipeline.warehouse.sql import sql_string

CATALOG_ENV = "SPOTLER_DUCKLAKE_CATALOG"
DATA_PATH_ENV = "SPOTLER_DUCKLAKE_DATA_PATH"
#: The alias the lake is attached under (``USE``d, so ``spotler.<table>`` works unqualified).
LAKE_ALIAS = "lake"
#: DuckDB's memory cap for a lake connection (as for the file; see ``connection.py``).
DEFAULT_MEMORY_LIMIT = "96MB"

#: Extensions a lake needs, by catalog kind: name -> wheel package.
_EXTENSION_WHEELS = {
    "ducklake": "duckdb_extension_ducklake",
    "postgres_scanner": "duckdb_extension_postgres_scanner",
}

_T = TypeVar("_T")


# -- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LakeSettings:
    """Where the lake is: ``catalog`` as ``ATTACH 'ducklake:<catalog>'`` takes it, and the
    ``data_path`` for its Parquet files (None: the one stored in the catalog)."""

    catalog: str
    data_path: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LakeSettings | None:
        """The lake named by the environment, or None when ``SPOTLER_DUCKLAKE_CATALOG`` is unset
        (the DuckDB file is then the warehouse)."""
        env = os.environ if environ is None else environ
        catalog = (env.get(CATALOG_ENV) or "").strip()
        if not catalog:
            return None
        data_path = (env.get(DATA_PATH_ENV) or "").strip() or None
        return cls(catalog, data_path)

    def __repr__(self) -> str:  # never show a password in logs
        return f"LakeSettings(catalog={redact(self.catalog)!r}, data_path={self.data_path!r})"

    __str__ = __repr__


# -- spilling ----------------------------------------------------------------------------------

#: Where lake connections spill (a folder of each connection's own inside it).
SPILL_ROOT = Path(tempfile.gettempdir()) / "spotler-duckdb-spill"


def spill_directory(base: Path = SPILL_ROOT) -> str:
    """A spill folder of one connection's own inside ``base`` (for ``temp_directory``).

    DuckDB names its temporary files alike in every database instance
    (``duckdb_temp_storage_S64K-0.tmp``) and deletes them when done, so instances spilling
    into one folder delete each other's files or crash: four lake runs writing at once failed
    their checks with "IO Error: Could not remove file
    ".../spotler-duckdb-spill/duckdb_temp_storage_S224K-0.tmp": No such file or directory"
    (``scripts/bench_backfill.py``), and three connections in one process sorting into one
    folder end in a segmentation fault. DuckDB creates this folder when it first spills and
    removes it when the connection closes; ``base`` itself stays.
    """
    with contextlib.suppress(OSError):  # unmakeable: only a statement that must spill fails
        base.mkdir(parents=True, exist_ok=True)
    return str(base / f"{os.getpid()}-{os.urandom(4).hex()}")


# -- redaction and the password ---------------------------------------------------------------

_KV_PASSWORD = re.compile(r"""(password\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s'&]+)""", re.IGNORECASE)
_URI_PASSWORD = re.compile(r"(://[^:/@\s]*:)([^@\s]*)(@)")


def redact(text: str) -> str:
    """``text`` with any ``password=…`` value and ``user:password@`` in URIs replaced by ***."""
    text = _KV_PASSWORD.sub(r"\1***", text)
    return _URI_PASSWORD.sub(r"\1***\3", text)


def _parse_kv(dsn: str) -> list[tuple[str, str]]:
    """libpq ``key=value`` pairs (values optionally single-quoted with backslash escapes)."""
    pairs: list[tuple[str, str]] = []
    i, n = 0, len(dsn)
    while i < n:
        while i < n and dsn[i].isspace():
            i += 1
        if i >= n:
            break
        m = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*").match(dsn, i)
        if not m:
            raise ValueError("not a libpq key=value connection string")
        key, i = m.group(1), m.end()
        if i < n and dsn[i] == "'":
            i += 1
            value = []
            while i < n and dsn[i] != "'":
                if dsn[i] == "\\" and i + 1 < n:
                    i += 1
                value.append(dsn[i])
                i += 1
            if i >= n:
                raise ValueError("unterminated quoted value")
            i += 1
            pairs.append((key, "".join(value)))
        else:
            j = i
            while j < n and not dsn[j].isspace():
                j += 1
            pairs.append((key, dsn[i:j]))
            i = j
    return pairs


def _kv(pairs: list[tuple[str, str]]) -> str:
    def quote(v: str) -> str:
        if v and not re.search(r"[\s'\\]", v):
            return v
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"

    return " ".join(f"{k}={quote(v)}" for k, v in pairs)


def _uri_to_pairs(uri: str) -> list[tuple[str, str]]:
    parts = urlsplit(uri)
    pairs: list[tuple[str, str]] = []
    if parts.path and parts.path != "/":
        pairs.append(("dbname", unquote(parts.path.lstrip("/"))))
    if parts.hostname:
        pairs.append(("host", parts.hostname))
    if parts.port:
        pairs.append(("port", str(parts.port)))
    if parts.username:
        pairs.append(("user", unquote(parts.username)))
    if parts.password is not None:
        pairs.append(("password", unquote(parts.password)))
    pairs.extend(parse_qsl(parts.query))
    return pairs


def split_password(catalog: str) -> tuple[str, str | None]:
    """``(catalog without its password, the password)`` for a ``postgres:`` catalog.

    Other catalogs (a DuckDB or SQLite file) come back unchanged with None.
    """
    if not catalog.startswith("postgres:"):
        return catalog, None
    dsn = catalog[len("postgres:") :]
    try:
        uri = re.match(r"postgres(ql)?://", dsn)
        pairs = _uri_to_pairs(dsn) if uri else _parse_kv(dsn)
    except ValueError:
        return catalog, None  # let libpq report it; errors are redacted anyway
    password = None
    kept = []
    for key, value in pairs:
        if key.lower() == "password":
            password = value
        else:
            kept.append((key, value))
    if password is None:
        return catalog, None
    return "postgres:" + _kv(kept), password


# -- extensions -------------------------------------------------------------------------------


def _library_version(conn: duckdb.DuckDBPyConnection) -> str:
    return conn.execute("PRAGMA version").fetchone()[0]  # type: ignore[index]  # "v1.5.5"


def extension_path(name: str, duckdb_version: str | None = None) -> Path | None:
    """The ``.duckdb_extension`` file for ``name`` from its wheel, if installed for this DuckDB."""
    package = _EXTENSION_WHEELS.get(name)
    if package is None:
        return None
    try:
        root = Path(str(importlib.resources.files(package)))
    except ModuleNotFoundError:
        return None
    version = duckdb_version or f"v{duckdb.__version__}"
    path = root / "extensions" / version / f"{name}.duckdb_extension"
    return path if path.is_file() else None


class ExtensionTamperedError(duckdb.IOException):
    """An extension file no longer matches the hash its wheel recorded at install."""


def verify_extension(name: str, path: Path, duckdb_version: str) -> None:
    """Check ``path`` (``name``'s file for ``duckdb_version``) against the SHA-256 that pip
    recorded for the wheel's file in the installed distribution's ``RECORD``; raise
    :class:`ExtensionTamperedError` if it differs or no hash is recorded."""
    package = _EXTENSION_WHEELS[name]
    wheel_file = f"{package}/extensions/{duckdb_version}/{name}.duckdb_extension"
    try:
        files = importlib.metadata.distribution(package).files or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    recorded = next((f.hash.value for f in files if f.hash and str(f) == wheel_file), None)
    stat = path.stat()
    actual = _sha256(path, stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if recorded is None or recorded != actual:
        why = "no hash is recorded for it" if recorded is None else "its content changed"
        wheel = package.replace("_", "-")
        raise ExtensionTamperedError(
            f"the DuckDB extension file {path} does not match what pip installed from "
            f"{wheel} ({why}); reinstall that wheel "
            f"(pip install --force-reinstall '{wheel}=={duckdb_version.lstrip('v')}')"
        )


@functools.cache
def _sha256(path: Path, size: int, mtime_ns: int, inode: int) -> str:
    """``path``'s SHA-256 as RECORD writes it (urlsafe base64, unpadded); remembered for the
    process while the file's size, time and inode stay the same."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def load_extensions(
    conn: duckdb.DuckDBPyConnection, names: tuple[str, ...], *, verify: bool = False
) -> None:
    """LOAD ``names`` from their wheels (no network); raise a clear error if one is missing.
    ``verify``: check each wheel's file against its recorded hash first (a connection that
    loads unsigned extensions)."""
    version = _library_version(conn)
    for name in names:
        path = extension_path(name, version)
        if path is not None:
            if verify:
                verify_extension(name, path, version)
            conn.execute(f"LOAD {sql_string(str(path))}")
            continue
        try:
            conn.execute(f"LOAD {name}")  # installed by hand into DuckDB's extension folder
        except duckdb.Error as exc:
            package = _EXTENSION_WHEELS[name].replace("_", "-")
            raise duckdb.IOException(
                f"the DuckDB extension {name!r} for DuckDB {version} is not installed: the "
                f"DuckLake warehouse needs the wheel {package}=={version.lstrip('v')} "
                f"(pip install '{package}=={version.lstrip('v')}'); DuckDB's own download "
                f"is disabled. ({redact(str(exc)).splitlines()[0]})"
            ) from None


def _all_from_wheels(names: tuple[str, ...]) -> bool:
    """True when every extension in ``names`` is installed from its wheel for this DuckDB."""
    return all(extension_path(name) is not None for name in names)


def _extensions_for(catalog: str) -> tuple[str, ...]:
    return ("ducklake", "postgres_scanner") if catalog.startswith("postgres:") else ("ducklake",)


# -- connecting -------------------------------------------------------------------------------


def _is_local(path: str) -> bool:
    return "://" not in path


def open_lake(
    settings: LakeSettings | None = None,
    *,
    read_only: bool = False,
    alias: str = LAKE_ALIAS,
    config: Mapping[str, str | int | bool] | None = None,
    snapshot_version: int | None = None,
    snapshot_time: datetime | str | None = None,
) -> duckdb.DuckDBPyConnection:
    """A new DuckDB connection with the lake attached as ``alias`` and in use.

    ``settings`` defaults to :meth:`LakeSettings.from_env` (an error if the catalog is unset).
    ``read_only`` attaches it read-only (readers: notebooks, checks). ``snapshot_version`` or
    ``snapshot_time`` attach the lake as it was then (read-only). ``config`` overrides DuckDB
    settings (default: :data:`DEFAULT_MEMORY_LIMIT`, spilling to the system temp folder).
    Errors never contain the catalog's password.
    """
    if settings is None:
        settings = LakeSettings.from_env()
        if settings is None:
            raise ValueError(f"{CATALOG_ENV} is not set: there is no DuckLake warehouse to open")
    if snapshot_version is not None or snapshot_time is not None:
        read_only = True
    catalog, password = split_password(settings.catalog)
    options = []
    if settings.data_path and not read_only:
        options.append(f"DATA_PATH {sql_string(settings.data_path)}")
        if _is_local(settings.data_path):
            Path(settings.data_path).mkdir(parents=True, exist_ok=True)
    if read_only:
        options.append("READ_ONLY")
    if snapshot_version is not None:
        options.append(f"SNAPSHOT_VERSION {int(snapshot_version)}")
    if snapshot_time is not None:
        when = snapshot_time.isoformat() if isinstance(snapshot_time, datetime) else snapshot_time
        options.append(f"SNAPSHOT_TIME {sql_string(str(when))}")
    settings_ = {
        "memory_limit": DEFAULT_MEMORY_LIMIT,
        # One folder per connection: runs in other processes spill at the same time.
        "temp_directory": spill_directory(),
        **(config or {}),
        # Never reach for DuckDB's extension server: everything comes from the wheels.
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    # A writer loads the wheels' files without DuckDB's signature check (each LOAD would
    # check again) once they match their recorded hashes; a reader keeps the check, so no
    # later LOAD on an analyst's connection runs an unsigned file.
    unsigned = not read_only and _all_from_wheels(_extensions_for(catalog))
    if unsigned:
        settings_["allow_unsigned_extensions"] = True
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", alias):
        raise ValueError(f"not a plain alias: {alias!r}")
    conn = duckdb.connect(config=dict(settings_))
    failure: duckdb.Error | None = None
    try:
        load_extensions(conn, _extensions_for(catalog), verify=unsigned)
        if password is not None:
            # The unnamed postgres secret is what the postgres extension adds to a connection
            # string without a password; TEMPORARY: it lives in this connection's memory only.
            conn.execute(
                f"CREATE TEMPORARY SECRET (TYPE postgres, PASSWORD {sql_string(password)})"
            )
        suffix = f" ({', '.join(options)})" if options else ""
        _attach(conn, f"ATTACH {sql_string('ducklake:' + catalog)} AS {alias}{suffix}")
        conn.execute(f"USE {alias}")
        return conn
    except duckdb.Error as exc:
        failure = exc
    conn.close()
    # Raised outside the ``except`` so the original (unredacted) error is not chained to it.
    message = redact(str(failure))
    if password:
        message = message.replace(password, "***")
    raise type(failure)(message)


def _attach(conn: duckdb.DuckDBPyConnection, statement: str, attempts: int = 10) -> None:
    """``ATTACH`` the lake. Several runs attaching a brand-new catalog at once race to create
    DuckLake's own tables in it; the losers fail with PostgreSQL's "duplicate key" (or
    "already exists") and simply attach again once the winner has created them."""
    for n in range(1, attempts + 1):
        try:
            conn.execute(statement)
            return
        except duckdb.Error as exc:
            text = str(exc)
            racing = "Failed to initialize DuckLake" in text and (
                "duplicate key" in text or "already exists" in text
            )
            if not racing or n == attempts:
                raise
            time.sleep(0.2 * n)


def lake_configured(environ: Mapping[str, str] | None = None) -> bool:
    """True when ``SPOTLER_DUCKLAKE_CATALOG`` is set: the lake is the warehouse."""
    return LakeSettings.from_env(environ) is not None


# -- conflicts --------------------------------------------------------------------------------

_CONFLICT_TEXTS = (
    "Transaction conflict",
    # Two commits racing for the same snapshot id once DuckLake's own retries are used up:
    "duplicate key value violates unique constraint",
    "could not serialize access",
)


def is_conflict(exc: BaseException) -> bool:
    """True for DuckLake's "another transaction committed a conflicting change" error.

    The failed transaction is already rolled back; re-running it (after re-reading) is safe.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, duckdb.Error) and any(t in str(current) for t in _CONFLICT_TEXTS):
            return True
        current = current.__cause__ or current.__context__
    return False


def retry_on_conflict(
    attempt: Callable[[], _T],
    *,
    attempts: int = 8,
    base_delay: float = 0.1,
    max_delay: float = 5.0,
    on_retry: Callable[[int, BaseException], None] | None = None,
) -> _T:
    """Call ``attempt`` (one whole transaction) until it commits without a conflict.

    Retries up to ``attempts`` times in all, with jittered exponential back-off; other errors
    and the last conflict propagate. ``on_retry(n, error)`` is told about each retry.
    """
    import random

    for n in range(1, attempts + 1):
        try:
            return attempt()
        except duckdb.Error as exc:
            if not is_conflict(exc) or n == attempts:
                raise
            if on_retry is not None:
                on_retry(n, exc)
            delay = min(max_delay, base_delay * 2 ** (n - 1))
            time.sleep(delay * (0.5 + random.random()))
    raise AssertionError("unreachable")
