"""Dagster resources: the Spotler API, the DuckDB warehouse and the clock."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager, suppress
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field, PrivateAttr, field_validator

from spotler_pipeline.client import ClientSettings, SpotlerClient
from spotler_pipeline.defs.config import CREDENTIAL_ENV_VARS, DEFAULT_BASE_URL, DEFAULT_TIMEZONE
from spotler_pipeline.defs.failures import failing_plainly
from spotler_pipeline.warehouse import (
    Absent,
    Replacement,
    StagingArea,
    WriteResult,
    ensure_schema,
    replace_window,
)
from spotler_pipeline.warehouse.account import account_fingerprint
from spotler_pipeline.warehouse.connection import open_warehouse
from spotler_pipeline.warehouse.contact_key import contact_key_path, load_contact_key
from spotler_pipeline.warehouse.lake import (
    LakeSettings,
    open_lake,
    retry_on_conflict,
    spill_directory,
)
from spotler_pipeline.warehouse.publish import open_published, publish_snapshot, published_path
from spotler_pipeline.warehouse.quality import Window
from spotler_pipeline.warehouse.writes import (
    DEFAULT_INSERT_MEMORY_LIMIT,
    WriteMemory,
    memory_bytes,
    merge_presence,
    transaction,
    with_table_rows,
)

_T = TypeVar("_T")


class SpotlerResource(dg.ConfigurableResource):
    """Spotler's REST API (OAuth 1.0a, one-legged). Credentials come from
    ``SPOTLER_CONSUMER_KEY`` / ``SPOTLER_CONSUMER_SECRET`` through ``dg.EnvVar``."""

    consumer_key: str | None = Field(default=None, description="OAuth consumer key.")
    consumer_secret: str | None = Field(default=None, description="OAuth consumer secret.")
    base_url: str = Field(default=DEFAULT_BASE_URL, description="API base URL.")
    timezone: str = Field(default=DEFAULT_TIMEZONE, description="The account's time zone.")
    page_size: int = Field(default=10000, description="Records per page (API maximum 10000).")
    max_concurrent_requests: int = Field(
        default=8, description="Requests in flight at once, across all threads of a run."
    )
    max_requests_per_second: float | None = Field(
        default=None, description="Optional request-rate cap."
    )
    timeout_seconds: float = Field(default=60.0, description="Timeout of one HTTP request.")
    max_retry_after_seconds: float = Field(
        default=300.0,
        description=(
            "Longest Retry-After the client waits for; a server asking for longer fails the "
            "request at once, naming what it asked."
        ),
    )

    def client_settings(self) -> ClientSettings:
        missing = [
            name
            for name, value in zip(
                CREDENTIAL_ENV_VARS, (self.consumer_key, self.consumer_secret), strict=True
            )
            if not value
        ]
        if missing:
            raise dg.Failure(
                description=(
                    "Spotler credentials are not configured: set "
                    + " and ".join(missing)
                    + " in the environment runs start in (and SPOTLER_BASE_URL to use another "
                    "endpoint). `make dev` sets them for the bundled simulator."
                )
            )
        assert self.consumer_key is not None and self.consumer_secret is not None
        try:
            return ClientSettings(
                consumer_key=self.consumer_key,
                consumer_secret=self.consumer_secret,
                base_url=self.base_url,
                timezone=self.timezone,
                page_size=self.page_size,
                timeout=self.timeout_seconds,
                max_concurrent_requests=self.max_concurrent_requests,
                max_requests_per_second=self.max_requests_per_second,
                max_retry_after=self.max_retry_after_seconds,
            )
        except ValueError as exc:  # the settings' own one-line message (never a secret)
            raise dg.Failure(
                description=f"The Spotler resource's configuration is not usable: {exc}",
                allow_retries=False,
            ) from None

    @contextmanager
    def get_client(self, contact_key: bytes | None = None) -> Iterator[SpotlerClient]:
        """A client for the step whose logs and errors tag contacts with ``contact_key`` (the
        warehouse's, :meth:`WarehouseResource.contact_key`, so that its tags match the
        checks'); an error the user can act on (credentials rejected, Spotler unreachable)
        fails the step with its message (:mod:`.failures`)."""
        settings = self.client_settings()
        if contact_key is not None:
            settings = replace(settings, contact_key=contact_key)
        with failing_plainly(settings.contact_key):
            client = SpotlerClient(settings)
            try:
                yield client
            finally:
                client.close()

    def account(self) -> str:
        """The account's fingerprint (a hash of the consumer key) that every write checks,
        so one warehouse never holds two accounts' data."""
        return account_fingerprint(self.client_settings().consumer_key)


class WarehouseResource(DuckDBResource):
    """The warehouse holding schema ``spotler``: the DuckDB file (``SPOTLER_DUCKDB_PATH``),
    or, when ``ducklake_catalog`` is set, a DuckLake (catalog in PostgreSQL, Parquet files
    under ``ducklake_data_path``). Asset code does not know which.

    File: runs open it only for their short final write; a read-only copy is published for
    notebooks (see :mod:`spotler_pipeline.notebook`) once a run's steps are done, so a run
    that writes in several steps (a catalogue, then its interactions) copies the file once
    and readers see its tables change together. Used outside a run, each write publishes.
    Lake: runs write concurrently (a conflicting commit is retried), readers attach the lake
    read-only and see the latest committed snapshot; nothing is copied.

    Every write goes through :meth:`write`: it upgrades an older warehouse first, checks the
    Spotler account and writes in one transaction.
    """

    publish: bool = Field(
        default=True,
        description="Publish a read-only copy for notebooks once a run that wrote is done.",
    )
    lock_timeout_seconds: float = Field(
        default=120.0,
        description=(
            "How long a run waits while another process holds the file (it logs who, every "
            "15 s) before it fails saying which process to close."
        ),
    )
    ducklake_catalog: str | None = Field(
        default=None,
        description=(
            "SPOTLER_DUCKLAKE_CATALOG: the DuckLake catalog (e.g. 'postgres:dbname=spotler_lake "
            "host=... user=...'); when set, the lake is the warehouse and the file is unused."
        ),
    )
    ducklake_data_path: str | None = Field(
        default=None,
        description="SPOTLER_DUCKLAKE_DATA_PATH: where the lake's Parquet files go.",
    )
    staging_dir: str | None = Field(
        default=None,
        description=(
            "Where runs spill fetched pages until the final write (SPOTLER_STAGING_DIR); "
            "default: .staging/ beside the warehouse file."
        ),
    )
    contact_key_file: str | None = Field(
        default=None,
        description=(
            "SPOTLER_CONTACT_KEY_FILE: the file with the secret key of the <contact:...> tags "
            "that stand for contact ids in logs and checks (created on first use, mode 0600); "
            "default: beside the warehouse file, or beside a lake's local data folder."
        ),
    )

    write_memory_limit: str | None = Field(
        default=DEFAULT_INSERT_MEMORY_LIMIT,
        description=(
            "DuckDB's memory cap for a write's bulk insert, on top of what the write's deletes "
            "hold until the commit (they cannot spill: ~10 bytes per replaced row). Without a "
            "cap DuckDB keeps every block it wrote cached, so a run's memory grows with the "
            "partition. None: inserts run under connection_config's memory_limit (deletes "
            "always do; without one, DuckDB's default of 80% of the machine's memory)."
        ),
    )

    #: Set for the length of a run: the copy for readers is published when it ends.
    _publish_at_teardown: bool = PrivateAttr(default=False)
    #: A write committed since the copy was last published.
    _unpublished: bool = PrivateAttr(default=False)
    _contact_key: bytes | None = PrivateAttr(default=None)

    @field_validator("write_memory_limit")
    @classmethod
    def _a_memory_size(cls, value: str | None) -> str | None:
        if value is not None:
            memory_bytes(value)  # a clear error now rather than after the fetch
        return value

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection with schema ``spotler`` addressable as ``spotler.<table>``.

        Replaces dagster-duckdb's plain ``duckdb.connect``: opened directly, a file named
        ``spotler.duckdb`` makes ``spotler.<table>`` ambiguous (see warehouse.connection).
        """
        config = self.duckdb_config()
        lake = self.lake
        # An error the user can act on (the file held by another process, another account's
        # data, a newer warehouse) fails the step with its message (see .failures).
        with failing_plainly():
            if lake is not None:
                conn = open_lake(lake, config=config)
            else:
                conn = open_warehouse(
                    self.database,
                    lock_timeout=self.lock_timeout_seconds,
                    config=config,
                    on_wait=dg.get_dagster_logger().warning,
                )
            try:
                yield conn
            finally:
                conn.close()

    connect = get_connection

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._publish_at_teardown = True

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """Publish what the run's steps wrote (also when a later step failed: what was
        committed is published)."""
        self._publish_at_teardown = False
        if not self._unpublished:
            return
        try:
            with self.connect() as conn:
                self._publish(conn, context.log)
        except Exception as exc:  # the file held by another run for longer than the timeout
            _unpublished_warning(context.log, exc)

    def contact_key(self) -> bytes:
        """The warehouse's secret key of contact tags (see
        :mod:`spotler_pipeline.warehouse.contact_key`), created on first use."""
        if self._contact_key is None:
            try:
                path = contact_key_path(self.database, self.lake, self.contact_key_file)
                self._contact_key = load_contact_key(path)
            except (OSError, ValueError) as exc:
                raise dg.Failure(description=f"Contact key: {exc}") from None
        return self._contact_key

    def duckdb_config(self) -> dict[str, Any]:
        """DuckDB settings for every connection: ``connection_config`` (``memory_limit``,
        ``threads``, ``temp_directory``, ...) over the warehouse's defaults. Each connection
        spills into a folder of its own inside ``temp_directory``."""
        config: dict[str, Any] = {"custom_user_agent": "spotler_pipeline", **self.connection_config}
        if self.lake is not None and config.get("temp_directory"):
            config["temp_directory"] = spill_directory(Path(config["temp_directory"]))
        return config

    def write_memory(self) -> WriteMemory:
        """What a write may use: ``write_memory_limit`` per insert, under the user's
        ``memory_limit``."""
        return WriteMemory(
            insert=self.write_memory_limit, ceiling=self.connection_config.get("memory_limit")
        )

    @property
    def lake(self) -> LakeSettings | None:
        """The lake's settings, or ``None`` when the DuckDB file is the warehouse."""
        if not self.ducklake_catalog:
            return None
        return LakeSettings(self.ducklake_catalog, self.ducklake_data_path or None)

    @contextmanager
    def read(self, *, own_writes: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection to what readers see: the published copy, or the lake.

        The published copy never waits on or blocks a writer, so steps that only read need no
        slot of the DuckDB pool. Before anything has been published (or with ``publish`` off)
        it falls back to the file itself. So does a run that wrote and publishes when it ends,
        for its own steps (``own_writes``): its checks and the steps after its writes read
        what it wrote, from the file, inside writing steps that hold the pool's slot. With
        ``own_writes=False`` (the nightly whole-table checks) the published copy is read all
        the same, so a long scan never holds the file.
        """
        with failing_plainly():  # the file held for too long: its one line (.failures)
            conn: duckdb.DuckDBPyConnection | None = None
            lake = self.lake
            if lake is not None:
                with suppress(duckdb.Error):  # no lake in the catalog yet
                    conn = open_lake(lake, read_only=True, config=self.duckdb_config())
            elif self._unpublished and own_writes:
                conn = open_warehouse(
                    self.database,
                    read_only=True,
                    lock_timeout=self.lock_timeout_seconds,
                    config=self.duckdb_config(),
                    on_wait=dg.get_dagster_logger().warning,
                )
            elif self.publish and published_path(self.database).exists():
                conn = open_published(
                    self.database,
                    lock_timeout=self.lock_timeout_seconds,
                    config=self.duckdb_config(),
                )
            if conn is None:  # nothing to read yet: create the schema (or lake), as a write would
                with self.get_connection() as new:
                    ensure_schema(new)
                    yield new
                return
            with closing(conn):
                yield conn

    def staging(self) -> StagingArea:
        """A staging area for one run's pages in the staging directory (what killed runs
        left there is removed first, and said in the log)."""
        directory = Path(self.staging_dir) if self.staging_dir else staging_dir_for(self.database)
        stage = StagingArea(directory)
        if stage.abandoned:
            dg.get_dagster_logger().warning(
                f"Removed {len(stage.abandoned)} staging folder(s) left by killed runs in "
                f"{directory}"
            )
        return stage

    def write(
        self,
        replacements: Sequence[Replacement],
        days: Window | None = None,
        *,
        absent: Sequence[Absent] = (),
        account: str | None = None,
    ) -> list[WriteResult]:
        """Write staged rows in one transaction, then publish the copy for readers.

        With ``days``, each (partitioned) table's rows in ``[days.start, days.end)`` are
        replaced: only those of the items in its scope, and ``absent`` items are flagged
        ``present = false`` (:func:`~spotler_pipeline.warehouse.writes.replace_window`).
        Without, each table is an unpartitioned catalogue whose staged rows are its whole
        current listing, merged by presence
        (:func:`~spotler_pipeline.warehouse.writes.merge_presence`).
        """
        wrong = [
            r.table.name
            for r in replacements
            if (r.table.partition_column is None) == (days is not None)
        ]
        if wrong:
            raise ValueError(
                f"{', '.join(wrong)}: days are for partitioned tables, and only they take "
                "them (an unpartitioned catalogue is merged whole)"
            )
        if days is None:
            if absent:
                raise ValueError(
                    "absent items are flagged by a window's write; a merged listing flags "
                    "what it no longer lists itself"
                )
            return self._write(
                lambda conn: with_table_rows(
                    conn, merge_presence(conn, replacements, account=account)
                )
            )
        return self._write(
            lambda conn: with_table_rows(
                conn,
                replace_window(
                    conn,
                    replacements,
                    days.start,
                    days.end,
                    absent=absent,
                    account=account,
                    memory=self.write_memory(),
                ),
            )
        )

    def transact(self, work: Callable[[duckdb.DuckDBPyConnection], _T]) -> _T:
        """Run ``work`` in one transaction on a read-write connection, published for readers
        as :meth:`write`'s are (the follow-up rules' own tables and log)."""

        def in_transaction(conn: duckdb.DuckDBPyConnection) -> _T:
            with transaction(conn, None):
                return work(conn)

        return self._write(in_transaction)

    def _write(self, write: Callable[[duckdb.DuckDBPyConnection], _T]) -> _T:
        if self.lake is not None:
            return self._write_lake(write)
        with self.connect() as conn:
            results = write(conn)
            if self.publish:
                self._unpublished = True
                if not self._publish_at_teardown:
                    self._publish(conn, dg.get_dagster_logger())
        return results

    def _publish(self, conn: duckdb.DuckDBPyConnection, log: Any) -> None:
        """Copy the committed warehouse for readers (``conn`` holds the file)."""
        self._unpublished = False
        started = time.monotonic()
        # The write is committed: a failed copy for readers must not turn it into a failed
        # run (a retry would fetch everything again for nothing). Readers keep the previous
        # copy until the next write publishes.
        try:
            target = publish_snapshot(conn, Path(self.database))
        except Exception as exc:
            _unpublished_warning(log, exc)
            return
        log.info(
            f"Published the copy for readers ({target.stat().st_size / 2**20:,.0f} MB) in "
            f"{time.monotonic() - started:.1f}s"
        )

    def _write_lake(self, write: Callable[[duckdb.DuckDBPyConnection], _T]) -> _T:
        """One transaction on the lake, re-run when another writer committed a conflicting
        change first (DuckLake detects conflicts per table at COMMIT: concurrent replaces
        of one table commit one after the other; the staged files are simply read again)."""
        log = dg.get_dagster_logger()

        def on_retry(attempt: int, error: BaseException) -> None:
            log.info(
                f"Another run committed to the same table first; writing again "
                f"(attempt {attempt + 1} of {LAKE_COMMIT_ATTEMPTS})"
            )

        with self.connect() as conn:
            return retry_on_conflict(
                lambda: write(conn),
                attempts=LAKE_COMMIT_ATTEMPTS,
                max_delay=10.0,
                on_retry=on_retry,
            )


def _unpublished_warning(log: Any, exc: Exception) -> None:
    log.warning(
        f"The write is committed, but publishing the read-only copy for notebooks failed "
        f"({type(exc).__name__}: {exc}); readers see the previous copy until the next write "
        "publishes."
    )


#: How often a write to the lake is tried when concurrent runs keep committing first.
LAKE_COMMIT_ATTEMPTS = 30


def staging_dir_for(database: str | Path) -> Path:
    """The default staging directory: ``.staging/`` beside the warehouse file."""
    return Path(database).parent / ".staging"


class ClockResource(dg.ConfigurableResource):
    """What time it is for the pipeline. Real time unless ``fixed_now`` is set, which the
    demo and the tests do to move the pipeline's clock together with the simulator's."""

    fixed_now: str | None = Field(
        default=None, description="ISO 8601 instant to use as 'now' (demo and tests)."
    )

    def now(self, timezone: str) -> datetime:
        tz = ZoneInfo(timezone)
        if self.fixed_now:
            value = datetime.fromisoformat(self.fixed_now)
            return value.replace(tzinfo=tz) if value.tzinfo is None else value.astimezone(tz)
        return datetime.now(tz)
