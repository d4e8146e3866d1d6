"""Dagster resources: the Spotler API, the DuckDB warehouse and the clock."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field

from spotler_pipeline.client import ClientSettings, SpotlerClient
from spotler_pipeline.defs.config import CREDENTIAL_ENV_VARS, DEFAULT_BASE_URL, DEFAULT_TIMEZONE
from spotler_pipeline.warehouse import Replacement, WriteResult, ensure_schema, replace_window
from spotler_pipeline.warehouse.connection import open_warehouse
from spotler_pipeline.warehouse.publish import publish_snapshot, published_path


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
                    + " (and SPOTLER_BASE_URL to use another endpoint), then reload the "
                    "code location. `make dev` sets them for the bundled simulator."
                )
            )
        assert self.consumer_key is not None and self.consumer_secret is not None
        return ClientSettings(
            consumer_key=self.consumer_key,
            consumer_secret=self.consumer_secret,
            base_url=self.base_url,
            timezone=self.timezone,
            page_size=self.page_size,
            timeout=self.timeout_seconds,
            max_concurrent_requests=self.max_concurrent_requests,
            max_requests_per_second=self.max_requests_per_second,
        )

    @contextmanager
    def get_client(self) -> Iterator[SpotlerClient]:
        client = SpotlerClient(self.client_settings())
        try:
            yield client
        finally:
            client.close()


class WarehouseResource(DuckDBResource):
    """The DuckDB file holding schema ``spotler`` (``SPOTLER_DUCKDB_PATH``).

    Runs open it only for their short final write; after each successful write a read-only
    copy is published for notebooks (see :mod:`spotler_pipeline.notebook`).
    """

    publish: bool = Field(
        default=True, description="Publish a read-only copy for notebooks after each write."
    )

    lock_timeout_seconds: float = Field(
        default=600.0, description="How long to wait while another process holds the file."
    )

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection with schema ``spotler`` addressable as ``spotler.<table>``.

        Replaces dagster-duckdb's plain ``duckdb.connect``: opened directly, a file named
        ``spotler.duckdb`` makes ``spotler.<table>`` ambiguous (see warehouse.connection).
        """
        conn = open_warehouse(
            self.database,
            lock_timeout=self.lock_timeout_seconds,
            config={"custom_user_agent": "spotler_pipeline", **self.connection_config},
        )
        try:
            yield conn
        finally:
            conn.close()

    connect = get_connection

    @contextmanager
    def read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection to the published copy (what checks and readers see).

        It never waits on or blocks a writer, so steps that only read need no slot of the
        DuckDB pool. Before anything has been published (or with ``publish`` off) it falls
        back to the file itself.
        """
        published = published_path(self.database)
        if not (self.publish and published.exists()):
            with self.get_connection() as conn:
                ensure_schema(conn)
                yield conn
            return
        conn = open_warehouse(published, read_only=True, lock_timeout=self.lock_timeout_seconds)
        try:
            yield conn
        finally:
            conn.close()

    def replace(
        self,
        replacements: Sequence[Replacement],
        start: date | None = None,
        end: date | None = None,
    ) -> list[WriteResult]:
        """Atomically replace the window ``[start, end)`` (or whole tables) and publish."""
        with self.connect() as conn:
            results = replace_window(conn, replacements, start, end)
            if self.publish:
                publish_snapshot(conn, Path(self.database))
        return results


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
