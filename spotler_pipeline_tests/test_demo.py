"""``make demo``: a simulated month, recorded in the instance ``make dev`` opens."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from spotler_pipeline import demo
from spotler_pipeline.definitions import build_definitions
from spotler_pipeline.warehouse.connection import open_warehouse

TZ = ZoneInfo("Europe/Amsterdam")


def demo_definitions() -> dg.Definitions:
    return build_definitions()


def test_the_demo_clocks_are_07_00_on_consecutive_days_never_in_the_future() -> None:
    morning = datetime(2026, 6, 15, 6, 0, tzinfo=TZ)
    clocks = demo.demo_clocks(morning, 30)
    assert len(clocks) == 30 and clocks[-1] == datetime(2026, 6, 14, 7, 0, tzinfo=TZ)
    assert all((b - a).days == 1 for a, b in zip(clocks, clocks[1:], strict=False))
    assert demo.demo_clocks(datetime(2026, 6, 15, 9, 0, tzinfo=TZ), 1)[0].day == 15


def test_a_short_demo_snapshots_each_day_and_the_dagster_instance_shows_it(
    tmp_path: Path, dagster_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "data" / "spotler.duckdb"
    assert demo.main(["--database", str(database), "--scale", "0.005", "--days", "3"]) == 0
    con = open_warehouse(database, read_only=True)
    try:
        days = con.execute(
            "SELECT count(DISTINCT snapshot_day) FROM spotler.mailing_stats_snapshots"
        ).fetchone()
        loaded = con.execute("SELECT count(*) FROM spotler.mailing_recipients").fetchone()
    finally:
        con.close()
    assert days == (3,) and loaded and loaded[0] > 0
    out = capsys.readouterr().out
    assert "Too few snapshots to tell" in out  # three days cannot show two weeks of maturing
    # The runs are in the instance `make dev` opens (here the test's DAGSTER_HOME).
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        key = dg.AssetKey(["spotler", "mailing_stats_snapshots"])
        assert len(instance.get_materialized_partitions(key)) == 3
        # Every check's latest evaluation passes: the snapshots came after the catalogue.
        checks = list(demo_definitions().resolve_asset_graph().asset_check_keys)
        latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(checks)
        evaluations = {
            k: r.event.asset_check_evaluation for k, r in latest.items() if r.event is not None
        }
        orphans = dg.AssetCheckKey(key, "mailings_in_catalogue")
        assert evaluations[orphans] is not None
        failed = {
            k.to_user_string(): e.description for k, e in evaluations.items() if e and not e.passed
        }
        assert failed == {}
        # Each run under the job a user would launch, as the README names them.
        jobs = {run.job_name for run in instance.get_runs()}
        assert jobs == {
            demo.MAILINGS_JOB,
            demo.SNAPSHOT_JOB,
            demo.CONTACTS_JOB,
            *demo.CATALOGUE_JOBS,
            *demo.REFRESH_JOBS,
            demo.FOLLOW_UPS_JOB,
        }
    assert "FAILED CHECK" not in out
    # the demo ends with the follow-up rules' counts, a dry run
    follow_ups = out[out.index("Follow-up rules (schema follow_ups") :].splitlines()
    assert [line.split()[0] for line in follow_ups[1:4]] == [
        "hard_bounces",
        "survey_call_back",
        "webshop_clickers",
    ]
    assert all(" 0 sent," in line for line in follow_ups[1:4])
