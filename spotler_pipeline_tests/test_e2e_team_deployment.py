"""The team deployment end to end: Dagster's storage and the lake's catalog on one real
PostgreSQL, ``dagster dev`` with ``deploy/team/dagster.yaml``, a 30-day backfill of the
mailings group launched through the UI's GraphQL API, runs writing the lake at once.

The backfill policy groups up to 31 days of an asset into one run, so one 30-day backfill of
the group is a single run (nothing to overlap). The 30 days are launched as two backfills of
15 days each, as a user would select them in the UI; both go to the daemon at once and their
runs write the lake concurrently (pool ``spotler_api``, limit 4 in the team ``dagster.yaml``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from spotler_pipeline.notebook import connect
from spotler_pipeline.warehouse.publish import published_path
from spotler_pipeline_tests import team_deployment as td
from spotler_pipeline_tests.postgres import PostgresServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

BACKFILL_DAYS = 30
BACKFILLS = 2
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture
def team(ducklake_extensions: None, postgres_server: PostgresServer) -> Iterator[td.TeamDagster]:
    # Not under pytest's tmp folder: the Parquet files and the logs are looked at after a failure.
    root = Path(tempfile.mkdtemp(prefix="spotler-team-"))
    dagster = td.TeamDagster(root, postgres_server, scale=0.02, seed=5).start()
    try:
        yield dagster
    finally:
        dagster.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_team_deployment_backfills_30_days_with_runs_writing_the_lake_at_once(
    team: td.TeamDagster, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    nodes = team.asset_nodes()
    group = sorted(k.split("/", 1)[1] for k, n in nodes.items() if n["groupName"] == "mailings")
    assert group == sorted(td.MAILINGS_GROUP), group

    days = td.past_days(team, BACKFILL_DAYS)
    started = time.monotonic()
    backfill_ids = td.launch_backfills(team, td.MAILINGS_GROUP, days, BACKFILLS)
    states = td.wait_for_backfills(team, backfill_ids, timeout=420)
    wall = time.monotonic() - started
    runs = td.backfill_runs(team, backfill_ids)
    overlap = td.max_overlap(runs)
    report = {
        "backfills": {b: s["status"] for b, s in states.items()},
        "partitions": f"{days[0]}..{days[-1]} ({len(days)} days, {BACKFILLS} backfills)",
        "wall_seconds": round(wall, 1),
        "run_span_seconds": round(td.run_span(runs), 1),
        "runs": [
            {"status": r["status"], "start": r["startTime"], "end": r["endTime"]} for r in runs
        ],
        "max_runs_started_at_once": overlap,
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "e2e_team_deployment.json").write_text(json.dumps(report, indent=2))
    with capsys.disabled():
        print(f"\n[e2e team deployment] {json.dumps(report)}")

    # Every run succeeded, and they wrote at the same time.
    assert all(s["status"] in ("COMPLETED", "COMPLETED_SUCCESS") for s in states.values()), (
        states,
        team.log(),
    )
    assert len(runs) >= BACKFILLS, runs
    failed = [r["runId"] for r in runs if r["status"] != "SUCCESS"]
    assert not failed, f"runs did not succeed: {td.failures(team, failed)}"
    assert overlap >= 2, f"no two runs were STARTED at once: {report['runs']}"
    for asset in td.MAILINGS_GROUP:
        missing = set(days) - team.materialized_partitions(asset)
        assert not missing, f"{asset}: not materialised {sorted(missing)}"

    # Dagster's storage is PostgreSQL: the run records are in its database, not in a SQLite
    # file under DAGSTER_HOME.
    assert {"runs", "event_logs", "jobs", "bulk_actions"} <= set(team.dagster_tables())
    stored_runs = team.postgres.psql("SELECT count(*) FROM runs", team.dagster_db)
    assert int(stored_runs) >= len(runs)
    assert not list(team.home.rglob("*.db")), "an instance database outside PostgreSQL"

    # Rows per day in the lake = what the simulator served, read as a notebook reads them:
    # the latest snapshot of the lake, with nothing copied for readers.
    served = team.simulator_summary()["days"]
    for name, value in team.environment().items():
        if name.startswith(("SPOTLER_", "PGPASSWORD")):
            monkeypatch.setenv(name, value)
    con = connect()
    try:
        for asset in td.MAILINGS_GROUP:
            stored = dict(
                con.execute(
                    f"SELECT strftime(send_day, '%Y-%m-%d'), count(*) FROM spotler.{asset} "
                    "GROUP BY ALL"
                ).fetchall()
            )
            expected = {d: served.get(d, {}).get(asset, 0) for d in days}
            assert {d: stored.get(d, 0) for d in days} == expected, asset
            assert set(stored) <= set(days), f"{asset}: rows outside the backfilled days"
            if asset in td.MAILING_INTERACTIONS and asset != "mailing_bounces":
                assert sum(expected.values()) > 0, asset
        (snapshots,) = con.execute("SELECT count(*) FROM lake.snapshots()").fetchone()
        assert snapshots > len(runs)
    finally:
        con.close()
    assert not team.database.exists(), "a lake deployment wrote the DuckDB file"
    assert not published_path(team.database).exists(), "a lake deployment copied for readers"
    assert list(team.lake_data_path.rglob("*.parquet")), "no Parquet files in the data path"
