"""``make demo``: fill ``data/spotler.duckdb`` from the bundled simulator and summarise it.

A simulated month: the simulator's clock and the pipeline's clock move together, one day at a
time. Each day the mailings sent since the day before are added to the catalogue, then the
statistics snapshot is taken (07:00, as the schedule does), so every mailing sent in the month
is followed from its send day as its opens and clicks mature, and every mailing a snapshot
counts is already in ``spotler.mailings`` (its check passes). On the last day everything else
is loaded once, as the daily refresh would have it by then: the interactions of the last 30
send days, campaigns, forms and their events, and a sample of contact histories.

The runs are recorded in the Dagster instance ``make dev`` opens (``DAGSTER_HOME``, by default
``.dagster_home``), so its UI shows what the warehouse holds.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import time
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg

from spotler_pipeline.defs.config import DEFAULT_DUCKDB_PATH, DeploymentSettings
from spotler_pipeline.defs.follow_up_assets import FOLLOW_UPS_JOB
from spotler_pipeline.defs.metadata import RANGE_END_TAG, RANGE_START_TAG
from spotler_pipeline.defs.resources import ClockResource, SpotlerResource, WarehouseResource
from spotler_pipeline.maturity import SNAPSHOT_QUERY, maturity
from spotler_pipeline.simulator import Simulator
from spotler_pipeline.warehouse import follow_ups
from spotler_pipeline.warehouse.connection import open_warehouse

#: Days of daily statistics snapshots (the simulated month).
SNAPSHOT_DAYS = 30
#: Send days of interactions loaded at the end (the daily refresh's window).
INTERACTION_DAYS = 30
SNAPSHOT_HOUR = 7
#: Contacts whose API history the demo reads (the daily asset reads every active contact).
DEMO_CONTACTS = 300

#: The named jobs the demo runs (as the schedules, sensors and the UI's job pages do), so the
#: UI lists each run under its job.
MAILINGS_JOB = "spotler_mailings_refresh"
SNAPSHOT_JOB = "spotler_statistics_snapshot"
CATALOGUE_JOBS = ["spotler_campaigns_catalog", "spotler_forms_list"]
REFRESH_JOBS = ["spotler_campaign_interactions_refresh", "spotler_form_results_refresh"]
CONTACTS_JOB = "spotler_contact_histories_refresh"
#: The mailing job's catalogue part (loaded before each snapshot) and its interactions.
MAILING_CATALOGUE = ["mailings", "mailing_links"]
MAILING_INTERACTIONS = ["mailing_recipients", "mailing_opens", "mailing_clicks", "mailing_bounces"]


def demo_definitions(
    defs: dg.Definitions, sim: Simulator, database: str, timezone: str
) -> dg.Definitions:
    """``defs``' assets, checks and jobs with the demo's resources: the simulator's API and
    ``database``; the clock is set per run (:func:`_materialize`), moving with the
    simulator's."""
    return dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        executor=defs.executor,
        resources={
            "spotler": SpotlerResource(
                consumer_key=sim.consumer_key,
                consumer_secret=sim.consumer_secret,
                base_url=sim.base_url,
                timezone=timezone,
            ),
            "warehouse": WarehouseResource(database=database),
            "clock": ClockResource.configure_at_launch(),
        },
    )


def _materialize(
    defs: dg.Definitions,
    job: str,
    now: datetime,
    instance: dg.DagsterInstance,
    *,
    assets: Sequence[str] = (),
    tags: dict[str, str] | None = None,
    partition_key: str | None = None,
    ops_config: dict[str, object] | None = None,
) -> None:
    """One run of ``job`` (only its ``assets`` when named) at ``now``, recorded in
    ``instance``."""
    result = defs.resolve_job_def(job).execute_in_process(
        run_config={
            "loggers": {"console": {"config": {"log_level": "WARNING"}}},
            "resources": {"clock": {"config": {"fixed_now": now.isoformat()}}},
            **({"ops": ops_config} if ops_config else {}),
        },
        instance=instance,
        partition_key=partition_key,
        asset_selection=[dg.AssetKey(["spotler", name]) for name in assets] or None,
        tags=tags,
        raise_on_error=False,
    )
    if not result.success:
        raise SystemExit(f"demo run of {job} failed; see the log above")


def summary(database: str) -> str:
    con = open_warehouse(database, read_only=True)
    try:
        lines = ["", "Rows per table (schema spotler):"]
        for (name,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'spotler' "
            "AND table_type = 'BASE TABLE' ORDER BY table_name"
        ).fetchall():
            (n,) = con.execute(f'SELECT count(*) FROM spotler."{name}"').fetchone()  # type: ignore[misc]
            lines.append(f"  {name:<36} {n:>12,}")
        lines += ["", "How opens mature (notebooks/mailing_performance.ipynb draws it):"]
        snapshots = con.sql(SNAPSHOT_QUERY).df()
        lines += textwrap.wrap(maturity(snapshots).summary(), 92)
        ranked = con.execute(
            """
            SELECT m.name, m.type, s.sent_count, s.click_count,
                   s.click_count / nullif(s.sent_count, 0) AS click_rate
            FROM spotler.mailing_stats_latest s
            JOIN spotler.mailings m ON m.encrypted_id = s.mailing_id
            WHERE m.type = 'EMAIL' AND s.sent_count > 0
            ORDER BY click_rate DESC
            """
        ).fetchall()
        if ranked:
            best, worst = ranked[0], ranked[-1]
            lines.append("")
            lines.append(f"Best click rate:  {best[0]} ({best[4]:.2%} of {best[2]:,} recipients)")
            lines.append(
                f"Worst click rate: {worst[0]} ({worst[4]:.2%} of {worst[2]:,} recipients)"
            )
        campaign = con.execute(
            "SELECT campaign_name, campaign_mailing_name, sum(sends) FROM "
            "spotler.campaign_mailing_daily GROUP BY ALL ORDER BY 3 DESC LIMIT 1"
        ).fetchone()
        if campaign:
            lines.append(
                f"Busiest campaign step: {campaign[0]} / {campaign[1]} ({campaign[2]:,} sends)"
            )
        form = con.execute(
            "SELECT form_name, sum(submissions) FROM spotler.form_response_summary "
            "GROUP BY ALL ORDER BY 2 DESC LIMIT 1"
        ).fetchone()
        if form:
            lines.append(
                f"Most answered form:    {form[0]} ({form[1]:,} submissions, tests excluded)"
            )
        lines += ["", follow_ups.summary(con)]
        return "\n".join(lines)
    finally:
        con.close()


def failed_checks(defs: dg.Definitions, instance: dg.DagsterInstance) -> list[str]:
    """Each asset check whose latest evaluation in ``instance`` failed, with its description
    (what the UI shows in red); checks never evaluated are not counted."""
    keys = list(defs.resolve_asset_graph().asset_check_keys)
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    failed = []
    for key, record in sorted(latest.items(), key=lambda item: item[0].to_user_string()):
        evaluation = record.event.asset_check_evaluation if record.event else None
        if evaluation is not None and not evaluation.passed:
            failed.append(f"{key.to_user_string()}: {evaluation.description}")
    return failed


def demo_clocks(now: datetime, days: int) -> list[datetime]:
    """The snapshot times: 07:00 on each of the last ``days`` days, the last one no later
    than ``now`` (before 07:00 the month ends yesterday)."""
    last = now.replace(hour=SNAPSHOT_HOUR, minute=0, second=0, microsecond=0)
    if last > now:
        last -= timedelta(days=1)
    return [last - timedelta(days=back) for back in range(days - 1, -1, -1)]


def _window(first: date, last: date, partitions_start: str) -> dict[str, str]:
    first = max(first, date.fromisoformat(partitions_start))
    return {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--database", default=os.environ.get("SPOTLER_DUCKDB_PATH", DEFAULT_DUCKDB_PATH)
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument(
        "--days", type=int, default=SNAPSHOT_DAYS, help="days of daily statistics snapshots"
    )
    args = parser.parse_args(argv)

    from spotler_pipeline.definitions import build_definitions
    from spotler_pipeline.devserver import PROJECT, prepare_dagster_home

    settings = DeploymentSettings.from_env()
    tz = ZoneInfo(settings.timezone)
    defs = build_definitions(settings)
    Path(args.database).parent.mkdir(parents=True, exist_ok=True)
    home = prepare_dagster_home(Path(os.environ.get("DAGSTER_HOME") or PROJECT / ".dagster_home"))
    clocks = demo_clocks(datetime.now(tz), args.days)
    # Every mailing a snapshot covered: the month and the snapshots' lookback before it.
    mailing_days = args.days + settings.snapshot_lookback_days
    started = time.monotonic()
    with (
        dg.DagsterInstance.from_config(str(home)) as instance,
        # The account is a function of calendar days, covering `days` before the simulator's
        # start: started at the month's end, it holds every mailing of the month and of the
        # snapshots' lookback before it; its clock then goes back to the month's first day.
        Simulator(seed=args.seed, scale=args.scale, now=clocks[-1], days=mailing_days) as sim,
    ):
        runs = demo_definitions(defs, sim, args.database, settings.timezone)
        print(f"Simulator at {sim.base_url} (seed {args.seed}, scale {args.scale})")
        print(f"Dagster instance {home} (what `make dev` shows)")
        print(
            f"A simulated month: a statistics snapshot at {SNAPSHOT_HOUR:02d}:00 on each of "
            f"{len(clocks)} days, {clocks[0]:%Y-%m-%d} .. {clocks[-1]:%Y-%m-%d}"
        )
        for n, now in enumerate(clocks):
            sim.set_now(now)  # both clocks: the simulator's and the pipeline's (resources)
            day = now.date()
            # The catalogue before the snapshot, as the 06:00 refresh precedes the 07:00
            # snapshot: first every mailing the snapshot looks back on, then each day the
            # sends since the day before.
            since = day - timedelta(days=settings.snapshot_lookback_days if n == 0 else 1)
            sent = _window(since, day, settings.partitions_start)
            _materialize(runs, MAILINGS_JOB, now, instance, assets=MAILING_CATALOGUE, tags=sent)
            _materialize(runs, SNAPSHOT_JOB, now, instance, partition_key=str(day))
            print(f"  [{now:%Y-%m-%d %H:%M}] mailings sent to {day}, snapshot {day}", flush=True)
        today = now.date()
        day = today.isoformat()
        recent = _window(
            today - timedelta(days=INTERACTION_DAYS - 1), today, settings.partitions_start
        )
        print(
            f"[{now:%Y-%m-%d %H:%M}] interactions, campaign events and form results "
            f"{recent[RANGE_START_TAG]} .. {recent[RANGE_END_TAG]}"
        )
        _materialize(runs, MAILINGS_JOB, now, instance, assets=MAILING_INTERACTIONS, tags=recent)
        for job in CATALOGUE_JOBS:
            _materialize(runs, job, now, instance)
        for job in REFRESH_JOBS:
            _materialize(runs, job, now, instance, tags=recent)
        print(f"[{now:%Y-%m-%d %H:%M}] contact histories of {DEMO_CONTACTS} contacts active {day}")
        _materialize(
            runs,
            CONTACTS_JOB,
            now,
            instance,
            partition_key=day,
            ops_config={
                "spotler_contact_histories": {"config": {"max_contacts_per_day": DEMO_CONTACTS}}
            },
        )
        _materialize(runs, FOLLOW_UPS_JOB, now, instance)
        failed = failed_checks(defs, instance)
    print(summary(args.database))
    for line in failed:
        print(f"FAILED CHECK {line}")
    if failed:
        return 1
    print(f"\nDone in {time.monotonic() - started:.0f}s: {args.database}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
