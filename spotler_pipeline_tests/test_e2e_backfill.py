"""A 30-day backfill launched the way the UI launches it, against the real ``dagster dev``.

The simulator and ``dagster dev`` (webserver + daemon, ``deploy/local/dagster.yaml`` with
its ``spotler_duckdb`` pool of one) run as separate processes. The backfill goes through
the UI's own GraphQL mutation ``launchPartitionBackfill``; once its longest run (the mailing
interactions) has started, a second writer (today's statistics snapshot, what the 07:00
schedule launches) is launched, so two runs compete for the DuckDB file and the pool has to
make them take turns.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from spotler_pipeline.notebook import connect
from spotler_pipeline_tests.e2e_dagster import (
    FINISHED_RUN_STATUSES,
    DagsterDev,
    shared_dagster,
)
from spotler_pipeline_tests.pipeline_harness import (
    CAMPAIGN_CATALOG,
    CAMPAIGN_INTERACTIONS,
    MAILING_ASSETS,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

BACKFILL_DAYS = 30
#: What the backfill selects: the send-day partitioned mailing assets, the campaign
#: catalogue (unpartitioned: materialised once) and the event-day campaign interactions.
BACKFILL_ASSETS = (*MAILING_ASSETS, *CAMPAIGN_CATALOG, *CAMPAIGN_INTERACTIONS)
#: The partition column of each partitioned table the backfill writes.
DAY_COLUMN = {
    **dict.fromkeys(MAILING_ASSETS, "send_day"),
    **dict.fromkeys(CAMPAIGN_INTERACTIONS, "event_day"),
}
UNPARTITIONED = set(CAMPAIGN_CATALOG)
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="module")
def dagster() -> DagsterDev:
    return shared_dagster()


def _finished(dagster: DagsterDev, backfill_id: str) -> dict[str, Any] | None:
    state = dagster.backfill(backfill_id)
    return None if state["status"] in ("REQUESTED", "CANCELING", "FAILING") else state


def _running_with(dagster: DagsterDev, backfill_id: str, asset: str) -> list[dict[str, Any]]:
    return [
        r
        for r in dagster.backfill_runs(backfill_id)
        if r["status"] == "STARTED"
        and ["spotler", asset] in [a["path"] for a in r["assetSelection"] or []]
    ]


def _describe(run: dict[str, Any]) -> str:
    """``job (schedule or sensor that launched it): status``."""
    tags = {t["key"]: t["value"] for t in run["tags"]}
    origin = tags.get("dagster/schedule_name") or tags.get("dagster/sensor_name") or "manual"
    return f"{run['jobName']} ({origin}): {run['status']}"


def test_ui_backfill_with_a_concurrent_writer(
    dagster: DagsterDev, capsys: pytest.CaptureFixture[str]
) -> None:
    nodes = dagster.asset_nodes()
    missing = [a for a in BACKFILL_ASSETS if f"spotler/{a}" not in nodes]
    assert not missing, f"assets not in the code location: {missing}"

    today = dagster.today
    days = [(today - timedelta(days=n)).isoformat() for n in range(BACKFILL_DAYS, 0, -1)]
    started = time.monotonic()
    backfill_id = dagster.launch_backfill(BACKFILL_ASSETS, days)

    # The second writer: today's statistics snapshot, launched while the backfill's run of
    # the mailing interactions (its longest: a minute or so) is going. The run queue holds
    # a run whose steps need a full pool, so it starts once the backfill's step lets go.
    in_flight = dagster.wait_for(
        "the backfill's run of the mailing interactions to start",
        lambda: (
            _running_with(dagster, backfill_id, "mailing_opens") or _finished(dagster, backfill_id)
        ),
        timeout=240,
        interval=0.5,
    )
    assert isinstance(in_flight, list), (
        f"the backfill finished before it was seen running: {in_flight}"
    )
    snapshot_run = dagster.launch_job(
        "spotler_statistics_snapshot", {"dagster/partition": today.isoformat()}
    )
    snapshot_due = time.time()

    state = dagster.wait_for(
        "the backfill to finish", lambda: _finished(dagster, backfill_id), timeout=600
    )
    wall = time.monotonic() - started
    # Wait for every run, also those a schedule ticking meanwhile has launched.
    dagster.wait_for(
        "every run to finish",
        lambda: all(r["status"] in FINISHED_RUN_STATUSES for r in dagster.runs()),
        timeout=300,
    )
    (snapshot,) = dagster.runs(runIds=[snapshot_run])
    snapshot_start = snapshot["startTime"] or snapshot_due
    runs = dagster.backfill_runs(backfill_id)
    mine = {snapshot_run, *(r["runId"] for r in runs)}
    others = [_describe(r) for r in dagster.runs() if r["runId"] not in mine]
    report = {
        "backfill_id": backfill_id,
        "assets": list(BACKFILL_ASSETS),
        "partitions": f"{days[0]}..{days[-1]} ({len(days)} days)",
        "backfill_status": state["status"],
        "wall_seconds": round(wall, 1),
        "backfill_runs": len(runs),
        "run_statuses": sorted(r["status"] for r in runs),
        "concurrent_writer": {
            "run": snapshot_run,
            "status": snapshot["status"],
            "launched_during_backfill_run": in_flight[0]["runId"],
            "seconds_from_launch_to_start": round(snapshot_start - snapshot_due, 1),
        },
        "other_runs": others,
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "e2e_backfill.json").write_text(json.dumps(report, indent=2))
    with capsys.disabled():
        print(f"\n[e2e backfill] {json.dumps(report)}")

    failed = [r for r in dagster.runs() if r["status"] != "SUCCESS"]
    assert not failed, f"runs did not succeed: {failed}\n{dagster.log()}"
    assert state["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), state
    assert runs, "the backfill launched no runs"

    for asset in BACKFILL_ASSETS:
        if asset in UNPARTITIONED:
            continue
        materialized = dagster.materialized_partitions(asset)
        assert set(days) <= materialized, f"{asset}: missing {sorted(set(days) - materialized)}"

    # Row counts: what the published copy (a notebook's view) holds vs what was served.
    served = dagster.simulator_summary()
    con = connect(dagster.database)
    try:
        for asset in BACKFILL_ASSETS:
            if asset in UNPARTITIONED:
                if asset in served["tables"]:
                    (stored,) = con.execute(
                        f"SELECT count(*) FROM spotler.{asset} WHERE present"
                    ).fetchone()
                    assert stored == served["tables"][asset], asset
                continue
            column = DAY_COLUMN[asset]
            stored_by_day = dict(
                con.execute(
                    f"SELECT strftime({column}, '%Y-%m-%d'), count(*) FROM spotler.{asset} "
                    f"GROUP BY ALL"
                ).fetchall()
            )
            expected = {d: served["days"].get(d, {}).get(asset, 0) for d in days}
            got = {d: stored_by_day.get(d, 0) for d in days}
            assert got == expected, f"{asset}: stored per day differs from served"
            assert sum(expected.values()) > 0 or asset == "mailing_bounces", asset
        (snapshots,) = con.execute(
            "SELECT count(*) FROM spotler.mailing_stats_snapshots WHERE snapshot_day = ?",
            [today],
        ).fetchone()
        assert snapshots == served["tables"]["mailings"]
    finally:
        con.close()


def _group(dagster: DagsterDev, group: str) -> list[str]:
    return sorted(
        key.split("/", 1)[1] for key, n in dagster.asset_nodes().items() if n["groupName"] == group
    )


def test_readme_recipe_the_mailings_group_over_two_past_days(dagster: DagsterDev) -> None:
    """The README's recipe, as the UI sends it: select the `mailings` group, Materialize…,
    two past days, Launch backfill. Every asset of the group, and it succeeds."""
    assets = _group(dagster, "mailings")
    assert "mailing_stats_snapshots" not in assets, "the today-only snapshot is in its own group"
    assert set(MAILING_ASSETS) <= set(assets)
    today = dagster.today
    days = [(today - timedelta(days=n)).isoformat() for n in (2, 1)]
    backfill_id = dagster.launch_backfill(assets, days)
    state = dagster.wait_for(
        "the mailings-group backfill to finish", lambda: _finished(dagster, backfill_id), 300
    )
    runs = dagster.backfill_runs(backfill_id)
    assert state["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), (state, runs)
    assert runs and all(r["status"] == "SUCCESS" for r in runs), runs
    for asset in assets:
        assert set(days) <= dagster.materialized_partitions(asset), asset


def _cli(dagster: DagsterDev, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "spotler_pipeline.cli", "backfill", "--url", dagster.url]
    return subprocess.run(
        [*command, "--poll", "1", "--timeout", "300", *args],
        capture_output=True,
        text=True,
        timeout=360,
    )


def test_cli_backfill_launches_through_the_daemon_and_follows_it(dagster: DagsterDev) -> None:
    """`spotler-pipeline backfill`: a range from a shell, run by the daemon like the UI's."""
    today = dagster.today
    first, last = (today - timedelta(days=n) for n in (6, 4))
    done = _cli(
        dagster, "--from", first.isoformat(), "--to", last.isoformat(), "--group", "mailings"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 days" in done.stdout and "succeeded" in done.stdout, done.stdout
    assert "completed_success; runs:" in done.stdout or "completed; runs:" in done.stdout
    not_ok = [r for r in dagster.runs() if r["status"] != "SUCCESS"]
    assert not not_ok, not_ok
    for asset in MAILING_ASSETS:
        assert {first.isoformat(), last.isoformat()} <= dagster.materialized_partitions(asset)

    # A past snapshot is refused by design: the command says so and exits 1.
    past = (today - timedelta(days=3)).isoformat()
    refused = _cli(dagster, "--from", past, "--to", past, "--assets", "mailing_stats_snapshots")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"Refusing snapshot partition(s) {past}" in refused.stderr, refused.stderr
