"""What runs when.

Two kinds of trigger, each where it fits:

- **Schedules** where a time is really meant: the 06:00 re-load of the last 30 send days of
  mailings (one run over the whole range) and the 07:00 statistics snapshot (taken at the same
  time every day, so `days_since_send` compares like with like).
- **Declarative automation** (:func:`daily_after_upstream`) where an asset must follow what it
  reads: from 06:00, an asset is requested once every asset it depends on has been refreshed
  since 06:00, however late that is. The contact histories thus never read yesterday's
  interactions because a refresh was still queued.

:func:`what_runs_when` lists both from the definitions; the README's table is tested to be
its :func:`markdown_table` (``python -m spotler_pipeline.defs.schedules`` prints it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import dagster as dg

from spotler_pipeline.defs.checks import WarehouseCheck, nightly_checks
from spotler_pipeline.defs.metadata import RANGE_END_TAG, RANGE_START_TAG

#: The daily refresh: the mailing schedule fires then, and the automated assets wait for it.
REFRESH_CRON = "0 6 * * *"
#: The daily statistics snapshot (after the refresh, at a fixed time of day).
SNAPSHOT_CRON = "0 7 * * *"
AUTOMATION_SENSOR_NAME = "spotler_automation"


def cron_time(cron: str) -> str:
    """``"0 6 * * *"`` -> ``"06:00"`` (the daily crons used here)."""
    minute, hour, *rest = cron.split()
    if rest != ["*", "*", "*"] or not (minute.isdigit() and hour.isdigit()):
        raise ValueError(f"not a daily cron: {cron!r}")
    return f"{int(hour):02d}:{int(minute):02d}"


def daily_after_upstream(
    timezone: str, days: int | None = None, cron: str = REFRESH_CRON
) -> dg.AutomationCondition:
    """From ``cron``'s time each day, once every asset this one depends on has been refreshed
    since then (or is requested in the same tick): the last ``days`` daily partitions (today's
    included) of a partitioned asset, or the whole of an unpartitioned one.

    ``AutomationCondition.on_cron`` with a wider partition window; several partitions are
    requested as one backfill, which the asset's backfill policy turns into one range run.
    """
    condition = dg.AutomationCondition.on_cron(cron, timezone)
    label = f"{cron_time(cron)} daily, once its upstream assets are refreshed"
    if days is not None:
        condition = condition.replace(
            "in_latest_time_window",
            dg.AutomationCondition.in_latest_time_window(timedelta(days=days)),
        )
        label += f"; last {days} days"
    return condition.with_label(label)


def automation_sensor() -> dg.AutomationConditionSensorDefinition:
    """Evaluates every asset's automation condition (on by default, every 30 s)."""
    return dg.AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR_NAME,
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "request the assets marked automation above once their condition holds (every "
            "asset they read refreshed since 06:00)"
        ),
    )


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

    def request(today: date) -> dg.RunRequest:
        return recent_days_request(today, days, first_partition, name)

    return _daily_schedule(name, job, cron, timezone, description, request)


def today_schedule(
    *, name: str, job: dg.UnresolvedAssetJobDefinition, cron: str, timezone: str, description: str
) -> dg.ScheduleDefinition:
    """A schedule that materialises today's partition of ``job``."""

    def request(today: date) -> dg.RunRequest:
        return dg.RunRequest(run_key=f"{name}-{today.isoformat()}", partition_key=today.isoformat())

    return _daily_schedule(name, job, cron, timezone, description, request)


def _daily_schedule(
    name: str,
    job: dg.UnresolvedAssetJobDefinition,
    cron: str,
    timezone: str,
    description: str,
    request: Callable[[date], dg.RunRequest],
) -> dg.ScheduleDefinition:
    """A schedule (on by default) asking for ``request(today)`` at each tick of ``cron``."""

    @dg.schedule(
        name=name,
        job=job,
        cron_schedule=cron,
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=description,
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        return request(context.scheduled_execution_time.date())

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


def job_selection(
    assets: Sequence[dg.AssetsDefinition], elsewhere: Sequence[dg.AssetChecksDefinition] = ()
) -> dg.AssetSelection:
    """What a job of ``assets`` runs: the assets and the checks of their writing steps, not
    the checks evaluated ``elsewhere``: the time-partition freshness checks belong to
    :func:`freshness_sensor`, which evaluates them on its own ticks (in a scheduled run they
    would only add a step saying the data just written is fresh), and the whole-table
    ``*_all_days`` checks to the nightly job (a refresh checks the days it wrote, inline).
    A run launched from the UI or CLI with an asset selection still gets both steps, because
    Dagster adds every check of the selected assets; the nightly one then skips itself."""
    selection = dg.AssetSelection.assets(*assets)
    return selection - dg.AssetSelection.checks(*elsewhere) if elsewhere else selection


def automated_group(
    jobs: Mapping[str, tuple[dg.AssetsDefinition, str]],
    nightly: tuple[str, Sequence[WarehouseCheck]],
    timezone: str,
    deadline: Sequence[dg.AssetsDefinition] = (),
) -> dg.Definitions:
    """A group its assets' automation conditions refresh, in order (so no schedules): a job
    per multi-asset (``{name: (assets, description)}``) to launch or backfill it by hand, its
    checks' nightly whole-table versions (``(name, checks)``), and a deadline for each day
    partition of the ``deadline`` assets (:func:`freshness_checks`)."""
    checks = [nightly_checks(*nightly), *(freshness_checks(deadline, timezone) if deadline else [])]
    return dg.Definitions(
        assets=[assets for assets, _ in jobs.values()],
        asset_checks=checks,
        jobs=[
            dg.define_asset_job(name, selection=job_selection([assets], checks), description=d)
            for name, (assets, d) in jobs.items()
        ],
    )


# -- what runs when, from the definitions ------------------------------------------------------

_LABEL = re.compile(
    r"(?P<time>\d\d:\d\d) daily, once its upstream assets are refreshed"
    r"(; last (?P<days>\d+) days)?"
)


#: Sensors built by Dagster's factories (which take no description of their own).
_SENSOR_DOES = {
    "freshness_checks_sensor": (
        "flag (as a warning) a daily partition not materialised by its 09:00 deadline"
    ),
}


@dataclass(frozen=True)
class Trigger:
    """One row of the README's "what runs when" table (markdown in every field)."""

    what: str
    kind: str
    when: str
    does: str


def _names(keys: Sequence[dg.AssetKey]) -> str:
    return ", ".join(f"`{k.path[-1]}`" for k in keys)


#: Asset metadata naming what a run of an asset does, where "re-load"/"re-read" is not it.
DOES_METADATA = "what_a_run_does"


def _refresh_text(spec: dg.AssetSpec, days: str | None) -> str:
    if DOES_METADATA in spec.metadata:
        return str(spec.metadata[DOES_METADATA])
    if days:
        column = spec.metadata.get("partitioned_by")
        return f"re-load the last {days} days by `{column}`, in one run"
    schema = spec.metadata.get("dagster/column_schema")
    columns = {c.name for c in schema.columns} if isinstance(schema, dg.TableSchema) else set()
    kept = "; what left the API is kept with `present = false`" if "present" in columns else ""
    return "re-read whole" + kept


def what_runs_when(defs: dg.Definitions) -> list[Trigger]:
    """Every schedule, automated asset group and sensor of ``defs``, by time of day."""
    timed: list[tuple[str, int, Trigger]] = []
    for schedule in defs.schedules or []:
        assert isinstance(schedule, dg.ScheduleDefinition)
        time = cron_time(str(schedule.cron_schedule))
        does = schedule.description or ""
        timed.append((time, 0, Trigger(f"`{schedule.name}`", "schedule", time, does)))
    for assets_def in defs.assets or []:
        if not isinstance(assets_def, dg.AssetsDefinition):
            continue
        automated = [s for s in assets_def.specs if s.automation_condition is not None]
        if not automated:
            continue
        labels = {s.automation_condition.label for s in automated if s.automation_condition}
        (label,) = labels  # one condition per multi-asset
        match = _LABEL.fullmatch(label or "")
        if match is None:
            raise ValueError(f"{assets_def.node_def.name}: unexpected automation label {label!r}")
        time, days = match["time"], match["days"]
        own = {s.key for s in automated}
        upstream = sorted({d.asset_key for s in automated for d in s.deps} - own)
        when = time + (f", after {_names(upstream)}" if upstream else "")
        does = _refresh_text(automated[0], days)
        timed.append(
            (time, 1 + len(upstream), Trigger(_names(sorted(own)), "automation", when, does))
        )
    rows = [t for _, _, t in sorted(timed, key=lambda x: (x[0], x[1]))]
    for sensor in defs.sensors or []:
        assert isinstance(sensor, dg.SensorDefinition)
        interval = sensor.minimum_interval_seconds or 30
        does = _SENSOR_DOES.get(sensor.name) or sensor.description or ""
        rows.append(Trigger(f"`{sensor.name}`", "sensor", f"every {interval} s", does))
    return rows


def markdown_table(defs: dg.Definitions) -> str:
    """:func:`what_runs_when` as the README's markdown table."""
    lines = [
        "| what | kind | when (account time zone) | does |",
        "|---|---|---|---|",
        *(f"| {t.what} | {t.kind} | {t.when} | {t.does} |" for t in what_runs_when(defs)),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    from spotler_pipeline.definitions import build_definitions
    from spotler_pipeline.defs.config import DeploymentSettings

    print(markdown_table(build_definitions(DeploymentSettings.from_env())))
