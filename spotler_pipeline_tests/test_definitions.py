"""The code location loads without credentials and has what the UI needs."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg

from spotler_pipeline.defs.metadata import POOL, RANGE_END_TAG, RANGE_START_TAG, column_schema
from spotler_pipeline.warehouse.catalog import ALL_TABLES
from spotler_pipeline_tests.pipeline_harness import (
    CAMPAIGN_CATALOG,
    CAMPAIGN_INTERACTIONS,
    MAILING_ASSETS,
    Harness,
    key,
)

#: Every table of the design brief, each an asset ``spotler/<table>``.
TABLES = {
    *MAILING_ASSETS,
    "mailing_stats_snapshots",
    *CAMPAIGN_CATALOG,
    *CAMPAIGN_INTERACTIONS,
    "forms",
    "form_results",
    "form_answers",
    "contact_mailing_history",
    "contact_campaign_mailing_history",
    "contact_form_history",
}


def test_module_loads_without_credentials() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOTLER_")}
    code = (
        "import spotler_pipeline as s; "
        "print(' '.join(sorted('/'.join(k.path) for k in s.defs.resolve_all_asset_keys())))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    follow_ups = {
        f"follow_ups/{r}" for r in ("hard_bounces", "survey_call_back", "webshop_clickers")
    }
    assert set(out.stdout.strip().splitlines()[-1].split()) == {
        *(f"spotler/{t}" for t in TABLES),
        *follow_ups,
    }


def test_client_notebook_and_warehouse_import_without_dagster() -> None:
    """An analyst's or a script's import stays light: no Dagster, no definitions built; the
    warehouse (every module of it) and the notebook helper use nothing of the Dagster layer."""
    code = (
        "import sys, pkgutil, importlib, spotler_pipeline.client, spotler_pipeline.notebook; "
        "import spotler_pipeline.warehouse as w; "
        "[importlib.import_module(m.name) for m in pkgutil.iter_modules(w.__path__, "
        "'spotler_pipeline.warehouse.')]; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'dagster' "
        "or m == 'spotler_pipeline.definitions' or m.startswith('spotler_pipeline.defs')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_record_declarations_import_neither_layer() -> None:
    """The declarations both layers read are plain data: importing them loads no HTTP, no
    DuckDB, no Dagster and neither layer."""
    code = (
        "import sys, spotler_pipeline.records; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('httpx', 'duckdb', 'dagster', 'pyarrow') or m.startswith('spotler_pipeline.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['spotler_pipeline.records']"


def test_the_code_location_loads_as_a_module_for_dagster() -> None:
    """``dagster dev -m spotler_pipeline`` finds ``defs`` although it is built lazily."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOTLER_")}
    dagster = [sys.executable, "-m", "dagster", "definitions", "validate"]
    out = subprocess.run(
        [*dagster, "-m", "spotler_pipeline"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_table_asset_is_documented_fresh_and_pooled(harness: Harness) -> None:
    repo = harness.defs.get_repository_def()
    graph = repo.asset_graph
    groups = {
        "mailings": "mailings",
        "mailing_links": "mailings",
        "mailing_opens": "mailings",
        # Only today's snapshot can be taken: it is kept out of the groups a user backfills.
        "mailing_stats_snapshots": "statistics",
    }
    for name, group in groups.items():
        node = graph.get(key(name))
        assert node.group_name == group
        assert node.freshness_policy is not None
        assert "dagster/column_schema" in node.metadata
        assert node.description and "DuckDB table" in node.description
        assert node.partitions_def is not None
    for assets_def in harness.defs.assets or []:
        assert isinstance(assets_def, dg.AssetsDefinition)
        assert {spec.pool for spec in [assets_def.op]} == {POOL}


def test_only_a_tables_partition_column_is_described_as_its_partition_key() -> None:
    """Columns shared between tables (``send_day``) say "partition key" only where they are:
    in ``mailing_stats_snapshots`` the key is ``snapshot_day``."""
    for table in ALL_TABLES:
        schema = column_schema(table)
        keyed = [c.name for c in schema.columns if "partition key" in (c.description or "")]
        assert keyed == ([table.partition_column] if table.partition_column else []), table.name


def test_daily_schedule_requests_the_last_30_send_days_in_one_run(harness: Harness) -> None:
    schedule = harness.defs.get_schedule_def("spotler_mailings_daily")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    when = datetime(2026, 6, 15, 6, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))
    with dg.build_schedule_context(
        scheduled_execution_time=when, repository_def=harness.defs.get_repository_def()
    ) as context:
        request = schedule.evaluate_tick(context).run_requests[0]
    assert request.tags[RANGE_START_TAG] == "2026-05-17"
    assert request.tags[RANGE_END_TAG] == "2026-06-15"


def test_snapshot_schedule_requests_today(harness: Harness) -> None:
    schedule = harness.defs.get_schedule_def("spotler_statistics_daily")
    when = datetime(2026, 6, 15, 7, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))
    with dg.build_schedule_context(
        scheduled_execution_time=when, repository_def=harness.defs.get_repository_def()
    ) as context:
        request = schedule.evaluate_tick(context).run_requests[0]
    assert request.partition_key == "2026-06-15"


def test_jobs_leave_freshness_to_its_sensor_and_whole_tables_to_the_night(
    harness: Harness,
) -> None:
    """A scheduled or hand-launched job runs its assets and the checks of its writing steps;
    the time-partition freshness checks are evaluated by their sensor alone, and the
    whole-table ``*_all_days`` checks by the nightly job alone."""
    repo = harness.defs.get_repository_def()
    freshness = {
        k
        for c in harness.defs.asset_checks or []
        if isinstance(c, dg.AssetChecksDefinition)
        for k in c.check_keys
        if k.name == "freshness_check"
    }
    partitioned = {
        key(t)
        for t in TABLES
        if repo.asset_graph.get(key(t)).partitions_def is not None and not t.startswith("contact_")
    }
    assert {k.asset_key for k in freshness} == partitioned
    sensor = repo.get_sensor_def("freshness_checks_sensor")
    assert set(sensor.asset_selection.resolve_checks(repo.asset_graph)) == freshness
    jobs = {j.name: j for j in repo.get_all_jobs() if not j.name.startswith("__")}
    refreshing = {
        "spotler_mailings_refresh": "mailing_opens",
        "spotler_statistics_snapshot": "mailing_stats_snapshots",
        "spotler_campaign_interactions_refresh": "campaign_mailing_opens",
        "spotler_form_results_refresh": "form_results",
    }
    for name, table in refreshing.items():
        checks = set(jobs[name].asset_layer.asset_graph.asset_check_keys)
        assert dg.AssetCheckKey(key(table), "primary_key_unique") in checks, name
        assert not checks & freshness, name
        assert not {k for k in checks if k.name.endswith("_all_days")}, name
    nightly = set(jobs["spotler_nightly_checks"].asset_layer.asset_graph.asset_check_keys)
    assert nightly and all(k.name.endswith("_all_days") for k in nightly)
