"""The team deployment as processes: PostgreSQL, the simulator and ``dagster dev`` on
``deploy/team/dagster.yaml``, for the end-to-end test and ``scripts/bench_backfill.py``.

:class:`TeamDagster` is :class:`~spotler_pipeline_tests.e2e_dagster.DagsterDev` (simulator,
``dagster dev``, the UI's GraphQL API) with the instance file of the team deployment: on one
PostgreSQL server, a login role with a password owns two databases, Dagster's storage and the
DuckLake catalog; the password reaches Dagster through ``DAGSTER_PG_PASSWORD`` and the lake
through libpq's ``PGPASSWORD`` (neither file nor command line holds it).

The helpers below launch a backfill as several backfills of consecutive days (the backfill
policy groups up to 31 days of an asset into one run, so a 30-day backfill of one group is
one run per asset step: to let runs write at once, the days are split), wait for them, and
read what happened from the run records: how many runs were in ``STARTED`` at once.
"""

from __future__ import annotations

import itertools
import os
import secrets
import sys
from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from spotler_pipeline.backfill import FAILURES
from spotler_pipeline.devserver import PROJECT
from spotler_pipeline_tests.e2e_dagster import (
    FINISHED_RUN_STATUSES,
    SIM_DAYS,
    TIMEZONE,
    DagsterDev,
    _start_group,
)
from spotler_pipeline_tests.pipeline_harness import MAILING_ASSETS
from spotler_pipeline_tests.pipeline_harness import MAILING_INTERACTIONS as MAILING_INTERACTIONS
from spotler_pipeline_tests.postgres import PostgresServer

TEAM_DAGSTER_YAML = PROJECT / "deploy" / "team" / "dagster.yaml"
#: The mailings group as the UI selects it (``mailing_stats_snapshots`` is in ``statistics``).
MAILINGS_GROUP = MAILING_ASSETS

_instances = itertools.count(1)


class TeamDagster(DagsterDev):
    """``dagster dev`` with ``deploy/team/dagster.yaml``: Dagster's storage and the lake's
    catalog in two databases of ``postgres``, owned by a role of this instance's own."""

    def __init__(
        self,
        root: Path,
        postgres: PostgresServer,
        *,
        scale: float,
        seed: int,
        instance_yaml: Path = TEAM_DAGSTER_YAML,
    ) -> None:
        super().__init__(root, scale=scale, seed=seed)
        self.postgres = postgres
        self.instance_yaml = instance_yaml
        suffix = f"{os.getpid()}_{next(_instances)}"
        self.role = f"spotler_team_{suffix}"
        self.password = secrets.token_urlsafe(18)
        self.dagster_db = f"dagster_{suffix}"
        self.lake_db = f"spotler_lake_{suffix}"
        self.lake_data_path = root / "lake-data"
        # Set, but must stay unused: on a lake nothing is written to (or published from) it.
        self.database = root / "unused" / "spotler.duckdb"

    @property
    def lake_catalog(self) -> str:
        """``SPOTLER_DUCKLAKE_CATALOG``: no password in it (libpq reads ``PGPASSWORD``)."""
        pg = self.postgres
        return f"postgres:dbname={self.lake_db} host={pg.host} port={pg.port} user={self.role}"

    def environment(self) -> dict[str, str]:
        """What ``dagster dev`` gets (and what a reader of the lake needs)."""
        pg = self.postgres
        return {
            **os.environ,
            **self.sim_env,
            "DAGSTER_HOME": str(self.home),
            "DAGSTER_PG_HOST": pg.host,
            "DAGSTER_PG_PORT": str(pg.port),
            "DAGSTER_PG_USER": self.role,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": self.dagster_db,
            "PGPASSWORD": self.password,
            "SPOTLER_DUCKLAKE_CATALOG": self.lake_catalog,
            "SPOTLER_DUCKLAKE_DATA_PATH": str(self.lake_data_path),
            "SPOTLER_DUCKDB_PATH": str(self.database),
            "SPOTLER_STAGING_DIR": str(self.root / "staging"),
            "SPOTLER_TIMEZONE": TIMEZONE,
            "SPOTLER_PARTITIONS_START": (self.today - timedelta(days=SIM_DAYS)).isoformat(),
            "PYTHONUNBUFFERED": "1",
        }

    def _start_dagster(self) -> None:
        self.postgres.create_role(self.role, self.password)
        self.postgres.create_database(self.dagster_db, owner=self.role)
        self.postgres.create_database(self.lake_db, owner=self.role)
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "dagster.yaml").write_text(self.instance_yaml.read_text())
        cmd = [
            *(sys.executable, "-m", "dagster", "dev", "-m", "spotler_pipeline"),
            *("-h", "127.0.0.1", "-p", str(self.port)),
        ]
        log = self.log_path.open("wb")
        self.dagster_proc = _start_group(
            cmd, env=self.environment(), cwd=PROJECT, stdout=log, stderr=log
        )
        log.close()
        self._wait_until_loaded()

    def dagster_tables(self) -> list[str]:
        """Tables dagster-postgres made in Dagster's database (runs, event_logs, ...)."""
        out = self.postgres.psql(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
            self.dagster_db,
        )
        return out.split()


# -- backfills and their runs ----------------------------------------------------------------


def past_days(dagster: DagsterDev, count: int) -> list[str]:
    """The ``count`` days before today (account time zone), oldest first."""
    today = dagster.today
    return [(today - timedelta(days=n)).isoformat() for n in range(count, 0, -1)]


def chunks(days: Sequence[str], parts: int) -> list[list[str]]:
    """``days`` cut into ``parts`` runs of consecutive days, as even as possible."""
    size, extra = divmod(len(days), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(list(days[start:end]))
        start = end
    return [c for c in out if c]


def launch_backfills(
    dagster: DagsterDev, assets: Sequence[str], days: Sequence[str], parts: int
) -> list[str]:
    """One ``launchPartitionBackfill`` per chunk of days, all launched before any finishes."""
    return [dagster.launch_backfill(assets, chunk) for chunk in chunks(days, parts)]


def wait_for_backfills(
    dagster: DagsterDev, backfill_ids: Iterable[str], timeout: float
) -> dict[str, dict[str, Any]]:
    """Wait until every backfill is done and every run it launched has finished."""
    ids = list(backfill_ids)

    def done() -> dict[str, dict[str, Any]] | None:
        states = {b: dagster.backfill(b) for b in ids}
        if any(s["status"] in ("REQUESTED", "CANCELING", "FAILING") for s in states.values()):
            return None
        runs = backfill_runs(dagster, ids)
        if any(r["status"] not in FINISHED_RUN_STATUSES for r in runs):
            return None
        return states

    return dagster.wait_for("the backfills to finish", done, timeout=timeout, interval=1.0)


def backfill_runs(dagster: DagsterDev, backfill_ids: Iterable[str]) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    for backfill_id in backfill_ids:
        runs.extend(dagster.backfill_runs(backfill_id))
    return runs


def max_overlap(runs: Iterable[dict[str, Any]]) -> int:
    """The most runs in ``STARTED`` at one moment, from the records' start and end times."""
    events: list[tuple[float, int]] = []
    for run in runs:
        start, end = run.get("startTime"), run.get("endTime")
        if start is None:
            continue
        events.append((float(start), 1))
        events.append((float(end) if end is not None else float("inf"), -1))
    # At an equal time an end comes before a start: touching runs did not overlap.
    events.sort(key=lambda e: (e[0], e[1]))
    best = now = 0
    for _, step in events:
        now += step
        best = max(best, now)
    return best


def run_span(runs: Sequence[dict[str, Any]]) -> float:
    """Seconds from the first run's start to the last run's end."""
    starts = [float(r["startTime"]) for r in runs if r.get("startTime")]
    ends = [float(r["endTime"]) for r in runs if r.get("endTime")]
    return max(ends) - min(starts) if starts and ends else 0.0


def failures(dagster: DagsterDev, run_ids: Iterable[str]) -> dict[str, list[str]]:
    """Each failed step's error (``step: message``), per run that has any."""
    out: dict[str, list[str]] = {}
    for run_id in run_ids:
        events = dagster.graphql(FAILURES, {"runId": run_id})["logsForRun"].get("events") or []
        errors = [
            f"{e['stepKey']}: {(e.get('error') or {}).get('message', '?').strip()}"
            for e in events
            if e["__typename"] == "ExecutionStepFailureEvent"
        ]
        if errors:
            out[run_id] = errors
    return out
