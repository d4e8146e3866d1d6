"""Run the code location's assets in-process against a simulator, as the tests need it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg

from spotler_pipeline.client import ClientSettings, SpotlerClient
from spotler_pipeline.defs.checks import WarehouseCheck, nightly_checks
from spotler_pipeline.defs.config import DeploymentSettings
from spotler_pipeline.defs.metadata import RANGE_END_TAG, RANGE_START_TAG
from spotler_pipeline.defs.resources import ClockResource, SpotlerResource, WarehouseResource
from spotler_pipeline.simulator import Simulator
from spotler_pipeline.simulator._account import Mailing
from spotler_pipeline.warehouse.connection import open_warehouse
from spotler_pipeline.warehouse.lake import LakeSettings, open_lake
from spotler_pipeline.warehouse.publish import publish_snapshot
from spotler_pipeline.warehouse.quality import Window
from spotler_pipeline_tests.sync import RequestGate, spotler_through

TIMEZONE = "Europe/Amsterdam"
MAILING_ASSETS = (
    "mailings",
    "mailing_links",
    "mailing_recipients",
    "mailing_opens",
    "mailing_clicks",
    "mailing_bounces",
)
MAILING_INTERACTIONS = MAILING_ASSETS[2:]


def served_counts(sim: Simulator, tables: Iterable[str], first: date, last: date) -> dict[str, int]:
    """Rows of each table on days first..last that ``sim`` serves as of its clock, as its
    account counts them (``Simulator.summary``): the truth, not what a client read."""
    days = sim.summary()["days"]
    counts = dict.fromkeys(tables, 0)
    day = first
    while day <= last:
        for table in counts:
            counts[table] += days.get(day.isoformat(), {}).get(table, 0)
        day += timedelta(days=1)
    return counts


def key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["spotler", name])


@dataclass
class Harness:
    sim: Simulator
    database: Path
    defs: dg.Definitions
    settings: DeploymentSettings
    #: the DuckLake to write instead of the DuckDB file (the tests run on both backends)
    lake: LakeSettings | None = None

    def warehouse(self) -> WarehouseResource:
        return WarehouseResource(
            database=str(self.database),
            ducklake_catalog=self.lake.catalog if self.lake else None,
            ducklake_data_path=self.lake.data_path if self.lake else None,
        )

    def _connect(self, read_only: bool) -> Any:
        if self.lake is not None:
            return open_lake(self.lake, read_only=read_only)
        return open_warehouse(self.database, read_only=read_only)

    @property
    def now(self) -> datetime:
        return self.sim.now

    def spotler(self, gate: RequestGate | None = None) -> SpotlerResource:
        """The API resource of the runs, sending through ``gate`` when given."""
        fields: dict[str, Any] = {
            "consumer_key": self.sim.consumer_key,
            "consumer_secret": self.sim.consumer_secret,
            "base_url": self.sim.base_url,
            "timezone": TIMEZONE,
            "max_concurrent_requests": 4,
        }
        return SpotlerResource(**fields) if gate is None else spotler_through(gate, **fields)

    def resources(self, **overrides: Any) -> dict[str, Any]:
        res: dict[str, Any] = {
            "spotler": self.spotler(),
            "warehouse": self.warehouse(),
            "clock": ClockResource(fixed_now=self.sim.now.isoformat()),
        }
        res.update(overrides)
        return res

    def assets_for(self, names: Iterable[str]) -> list[dg.AssetsDefinition]:
        wanted = {key(n) for n in names}
        return [
            a
            for a in self.defs.assets or []
            if isinstance(a, dg.AssetsDefinition) and set(a.keys) & wanted
        ]

    def materialize(
        self,
        names: Sequence[str],
        *,
        day: date | None = None,
        days: tuple[date, date] | None = None,
        raise_on_error: bool = True,
        instance: dg.DagsterInstance | None = None,
        **resource_overrides: Any,
    ) -> dg.ExecuteInProcessResult:
        tags = None
        partition_key = None
        if day is not None:
            partition_key = day.isoformat()
        if days is not None:
            tags = {RANGE_START_TAG: days[0].isoformat(), RANGE_END_TAG: days[1].isoformat()}
        return dg.materialize(
            self.assets_for(names),
            selection=[key(n) for n in names],
            resources=self.resources(**resource_overrides),
            partition_key=partition_key,
            tags=tags,
            raise_on_error=raise_on_error,
            instance=instance,
        )

    def materialize_logged(
        self, names: Sequence[str], **kwargs: Any
    ) -> tuple[dg.ExecuteInProcessResult, str]:
        """:meth:`materialize`, also returning every message of the run's log as one text."""
        with dg.DagsterInstance.ephemeral() as instance:
            result = self.materialize(names, instance=instance, **kwargs)
            logs = "\n".join(e.user_message for e in instance.all_logs(result.run_id))
        return result, logs

    def contacts_run_config(self, contacts: Iterable[str]) -> dict[str, Any]:
        """Run config for the contact histories reading ``contacts`` on demand: the ids go
        into a file beside the warehouse, the config names the file."""
        listing = self.database.parent / "contacts.txt"
        listing.parent.mkdir(parents=True, exist_ok=True)
        listing.write_text("".join(f"{c}\n" for c in contacts), encoding="utf-8")
        config = {"contacts_file": str(listing)}
        return {"ops": {"spotler_contact_histories": {"config": config}}}

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        con = self._connect(read_only=True)
        try:
            return con.execute(sql, list(params)).fetchall()
        finally:
            con.close()

    def count(self, table: str, where: str = "true", params: Sequence[Any] = ()) -> int:
        return int(self.query(f"SELECT count(*) FROM spotler.{table} WHERE {where}", params)[0][0])

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run a statement against the pipeline's file and publish the result, as a write
        would (tests use it to corrupt data that the checks then read)."""
        con = self._connect(read_only=False)
        try:
            con.execute(sql, list(params))
            if self.lake is None:
                publish_snapshot(con, self.database)
        finally:
            con.close()

    def client(self) -> SpotlerClient:
        return SpotlerClient(
            ClientSettings(
                consumer_key=self.sim.consumer_key,
                consumer_secret=self.sim.consumer_secret,
                base_url=self.sim.base_url,
                timezone=TIMEZONE,
            )
        )

    def day_start(self, day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=self.now.tzinfo)

    # -- the truth: the simulator's own account, never read back through the client ----------

    def send_day(self, mailing: Mailing) -> date:
        """The day (account zone) the simulator sent ``mailing``."""
        return datetime.fromtimestamp(mailing.send_ts, self.now.tzinfo).date()

    def sent_mailings(self, first: date, last: date) -> list[Mailing]:
        """The mailings the simulator's account has sent by now on send days first..last, in
        send order (deleted ones left out: nothing about them is served). ``audience`` is a
        sent mailing's ``sentCount``."""
        now = self.now.timestamp()
        account = self.sim.account
        return [
            m
            for m in account.mailings
            if m.send_ts <= now and account.fetchable(m) and first <= self.send_day(m) <= last
        ]

    def served_counts(self, tables: Iterable[str], first: date, last: date) -> dict[str, int]:
        """Rows of each table on days first..last (send, event or submit day) that the
        simulator serves as of now, as its account counts them (``Simulator.summary``)."""
        return served_counts(self.sim, tables, first, last)

    def served_per_day(self, table: str, first: date, last: date) -> dict[date, int]:
        """Rows of ``table`` per day first..last that the simulator serves (days with rows)."""
        days = self.sim.summary()["days"]
        return {
            day: n
            for label, row in days.items()
            if first <= (day := date.fromisoformat(label)) <= last and (n := row.get(table, 0))
        }

    def busiest_day(self, lookback: int = 14) -> date:
        """A recent send day with at least two mailings."""
        today = self.now.date()
        per_day = Counter(
            self.send_day(m) for m in self.sent_mailings(today - timedelta(days=lookback), today)
        )
        return max(per_day, key=lambda d: (per_day[d], d))

    def run_check(
        self, table: str, check: str, days: tuple[date, date] | None = None
    ) -> dg.AssetCheckResult:
        """Evaluate the check ``check`` of ``spotler/<table>`` on the warehouse as it is now:
        on the days ``days[0]..days[1]``, as the step that wrote them does (inline), or by
        default on every day, as its nightly version ``<check>_all_days`` does."""
        wanted = dg.AssetCheckKey(key(table), check)
        for rule in all_warehouse_checks():
            if rule.key == wanted:
                window = None if days is None else Window(days[0], days[1] + timedelta(days=1))
                warehouse = self.warehouse()
                with warehouse.read() as conn:
                    return rule.evaluate(
                        conn,
                        window,
                        None if days else rule.nightly_key,
                        contact_key=warehouse.contact_key(),
                    )
        raise KeyError(f"no check {check!r} on {table}")


# -- campaigns, forms and contacts ---------------------------------------------------------

CAMPAIGN_CATALOG = ("campaigns", "campaign_triggers", "campaign_mailings", "campaign_mailing_links")
CAMPAIGN_INTERACTIONS = (
    "campaign_mailing_recipients",
    "campaign_mailing_opens",
    "campaign_mailing_clicks",
    "campaign_mailing_bounces",
)


def all_groups_settings() -> DeploymentSettings:
    return DeploymentSettings(
        timezone=TIMEZONE,
        partitions_start="2026-01-01",
        interaction_refresh_days=30,
        campaign_refresh_days=3,
        snapshot_lookback_days=60,
    )


@dataclass
class FullHarness(Harness):
    """A :class:`Harness` over every group's definitions (see :func:`harness_with_all_groups`)."""


def all_warehouse_checks() -> list[WarehouseCheck]:
    """Every check of every group (each evaluated inline by its writing step, and nightly)."""
    from spotler_pipeline.defs.campaign_checks import campaign_checks
    from spotler_pipeline.defs.contact_checks import contact_checks
    from spotler_pipeline.defs.form_checks import form_checks
    from spotler_pipeline.defs.mailing_checks import mailing_checks

    return [*mailing_checks(), *campaign_checks(), *form_checks(), *contact_checks()]


def harness_with_all_groups(
    sim: Simulator,
    database: Path,
    lake: LakeSettings | None = None,
    settings: DeploymentSettings | None = None,
) -> FullHarness:
    """A harness whose definitions hold every group: mailings, campaigns, forms, contacts.

    Built from the groups' own factories, so these tests do not depend on how
    ``spotler_pipeline.definitions`` registers them.
    """
    from spotler_pipeline.defs.campaign_assets import build_campaign_definitions
    from spotler_pipeline.defs.contact_assets import build_contact_definitions
    from spotler_pipeline.defs.form_assets import build_form_definitions
    from spotler_pipeline.defs.mailing_assets import build_mailing_assets
    from spotler_pipeline.defs.mailing_checks import mailing_checks

    settings = settings or all_groups_settings()
    defs = dg.Definitions.merge(
        dg.Definitions(
            assets=build_mailing_assets(settings),
            asset_checks=[nightly_checks("spotler_mailings_all_days", mailing_checks())],
        ),
        build_campaign_definitions(settings),
        build_form_definitions(settings),
        build_contact_definitions(settings),
    )
    harness = FullHarness(sim=sim, database=database, defs=defs, settings=settings, lake=lake)
    # resources too, so that schedules and jobs resolve as in the real code location
    harness.defs = dg.Definitions.merge(defs, dg.Definitions(resources=harness.resources()))
    return harness
