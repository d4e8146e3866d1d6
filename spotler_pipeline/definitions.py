"""The code location's ``Definitions``: assets, checks, jobs, schedules and resources.

Loading needs no credentials: they are resolved from the environment when a run starts,
and a run without them fails with a message naming the missing variables.
"""

from __future__ import annotations

import os
import warnings
from datetime import date

import dagster as dg

from spotler_pipeline.defs.campaign_assets import build_campaign_definitions
from spotler_pipeline.defs.checks import nightly_checks, nightly_definitions
from spotler_pipeline.defs.config import (
    DEFAULT_BASE_URL,
    DEFAULT_DUCKDB_PATH,
    DeploymentSettings,
)
from spotler_pipeline.defs.contact_assets import build_contact_definitions
from spotler_pipeline.defs.follow_up_assets import build_follow_up_definitions
from spotler_pipeline.defs.form_assets import build_form_definitions
from spotler_pipeline.defs.mailing_assets import build_mailing_assets
from spotler_pipeline.defs.mailing_checks import mailing_checks
from spotler_pipeline.defs.resources import ClockResource, SpotlerResource, WarehouseResource
from spotler_pipeline.defs.schedules import (
    REFRESH_CRON,
    SNAPSHOT_CRON,
    automation_sensor,
    freshness_checks,
    freshness_sensor,
    job_selection,
    refresh_schedule,
    today_schedule,
)


def _env(name: str) -> str | dg.EnvVar | None:
    """``dg.EnvVar(name)`` when it is set (the UI then shows the name, never the value)."""
    return dg.EnvVar(name) if os.environ.get(name) else None


def default_resources(settings: DeploymentSettings) -> dict[str, dg.ConfigurableResource]:
    return {
        "spotler": SpotlerResource(
            # Always an EnvVar, set at load time or not: resolved only when a run starts.
            consumer_key=dg.EnvVar("SPOTLER_CONSUMER_KEY"),
            consumer_secret=dg.EnvVar("SPOTLER_CONSUMER_SECRET"),
            base_url=_env("SPOTLER_BASE_URL") or DEFAULT_BASE_URL,
            timezone=settings.timezone,
        ),
        "warehouse": WarehouseResource(
            database=_env("SPOTLER_DUCKDB_PATH") or DEFAULT_DUCKDB_PATH,
            staging_dir=_env("SPOTLER_STAGING_DIR"),
            ducklake_catalog=_env("SPOTLER_DUCKLAKE_CATALOG"),
            ducklake_data_path=_env("SPOTLER_DUCKLAKE_DATA_PATH"),
            contact_key_file=_env("SPOTLER_CONTACT_KEY_FILE"),
        ),
        "clock": ClockResource(),
    }


def build_definitions(settings: DeploymentSettings | None = None) -> dg.Definitions:
    # Backfill policies are "beta" and time-partition freshness checks "superseded" in this
    # Dagster release; both are what we want here (grouped backfill runs; a missed day shown
    # per partition), so their warnings are silenced rather than printed at every load.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        warnings.simplefilter("ignore", dg.SupersessionWarning)
        return _build_definitions(settings or DeploymentSettings.from_env())


def _build_definitions(settings: DeploymentSettings) -> dg.Definitions:
    tz = settings.timezone
    first_day = date.fromisoformat(settings.partitions_start)
    mailings, snapshots, interactions = build_mailing_assets(settings)

    freshness = freshness_checks([mailings, interactions, snapshots], tz)
    nightly = nightly_checks("spotler_mailings_all_days", mailing_checks())
    elsewhere = [nightly, *freshness]
    mailing_refresh = dg.define_asset_job(
        "spotler_mailings_refresh",
        selection=job_selection([mailings, interactions], elsewhere),
        description="Mailings, links and their interactions for a range of send days.",
    )
    snapshot_job = dg.define_asset_job(
        "spotler_statistics_snapshot",
        selection=job_selection([snapshots], elsewhere),
        description="Today's snapshot of every recent mailing's statistics.",
    )
    schedules = [
        refresh_schedule(
            name="spotler_mailings_daily",
            job=mailing_refresh,
            cron=REFRESH_CRON,
            timezone=tz,
            days=settings.interaction_refresh_days,
            first_partition=first_day,
            description=(
                f"one run re-loading the last {settings.interaction_refresh_days} send days of "
                "mailings, links and interactions, so late opens and clicks land"
            ),
        ),
        today_schedule(
            name="spotler_statistics_daily",
            job=snapshot_job,
            cron=SNAPSHOT_CRON,
            timezone=tz,
            description=(
                "today's statistics snapshot of every mailing sent in the last "
                f"{settings.snapshot_lookback_days} days (at a fixed time of day, so snapshots "
                "compare like with like)"
            ),
        ),
    ]
    mailing_defs = dg.Definitions(
        assets=[mailings, snapshots, interactions],
        asset_checks=elsewhere,
        jobs=[mailing_refresh, snapshot_job],
        schedules=schedules,
        resources=default_resources(settings),
    )
    # Campaigns, forms and the contact card: each group brings its own assets,
    # checks, jobs and schedules; one sensor evaluates every group's freshness checks.
    groups = dg.Definitions.merge(
        mailing_defs,
        build_campaign_definitions(settings),
        build_form_definitions(settings),
        build_contact_definitions(settings),
        build_follow_up_definitions(settings),
    )
    sensors = [freshness_sensor(groups), automation_sensor()]
    # In-process: a run (from the UI, a schedule or `dagster asset materialize`) is one
    # process, whose steps share its interpreter; the checks that guard a write run inside
    # the writing step. A process per step would pay Dagster's start-up for every step.
    return dg.Definitions.merge(
        groups,
        nightly_definitions(groups, tz),
        dg.Definitions(sensors=sensors, executor=dg.in_process_executor),
    )


defs = build_definitions()
