"""What runs when: daily refreshes of recent partitions and the statistics snapshot."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import dagster as dg

from spotler_pipeline.defs.metadata import RANGE_END_TAG, RANGE_START_TAG


def recent_days_request(
    today: date, days: int, first_partition: date, run_key_prefix: str
) -> dg.RunRequest:
    """One run over the last ``days`` daily partitions ending today (never before the first)."""
    start = max(first_partition, today - timedelta(days=days - 1))
    return dg.RunRequest(
        run_key=f"{run_key_prefix}-{today.isoformat()}",
        tags={RANGE_START_TAG: start.isoformat(), RANGE_END_TAG: today.isoformat()},
    )


def refresh_schedule(
    *,
    name: str,
    job: dg.UnresolvedAssetJobDefinition,
    cron: str,
    timezone: str,
    days: int,
    first_partition: date,
    description: str,
) -> dg.ScheduleDefinition:
    """A schedule that re-materialises the last ``days`` partitions of ``job`` in one run."""

    @dg.schedule(
        name=name,
        job=job,
        cron_schedule=cron,
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=description,
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        today = context.scheduled_execution_time.date()
        return recent_days_request(today, days, first_partition, name)

    return _schedule


def today_schedule(
    *, name: str, job: dg.UnresolvedAssetJobDefinition, cron: str, timezone: str, description: str
) -> dg.ScheduleDefinition:
    """A schedule that materialises today's partition of ``job``."""

    @dg.schedule(
        name=name,
        job=job,
        cron_schedule=cron,
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=description,
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        today = context.scheduled_execution_time.date().isoformat()
        return dg.RunRequest(run_key=f"{name}-{today}", partition_key=today)

    return _schedule


#: The check name ``build_time_partition_freshness_checks`` gives every check it builds.
FRESHNESS_CHECK_NAME = "freshness_check"


def freshness_checks(
    assets: Sequence[dg.AssetsDefinition], timezone: str, deadline_cron: str = "0 9 * * *"
) -> list[dg.AssetChecksDefinition]:
    """Fail (as a warning) when a day's partition is not materialised by the deadline."""
    return list(
        dg.build_time_partition_freshness_checks(
            assets=list(assets), deadline_cron=deadline_cron, timezone=timezone
        )
    )


def freshness_sensor(defs: dg.Definitions) -> dg.SensorDefinition:
    """One sensor (on by default) evaluating every time-partition freshness check in ``defs``."""
    checks = [
        c
        for c in defs.asset_checks or []
        if isinstance(c, dg.AssetChecksDefinition)
        and all(k.name == FRESHNESS_CHECK_NAME for k in c.check_keys)
    ]
    return dg.build_sensor_for_freshness_checks(
        freshness_checks=checks, default_status=dg.DefaultSensorStatus.RUNNING
    )
