"""A warehouse filled by the pipeline from the simulator, as an analyst's notebook finds it.

Three weeks of daily statistics snapshots (the simulator's clock moved a day between them, so
the numbers mature as they would, and the notebook can follow each mailing for two weeks),
then three weeks of mailings with their interactions and the campaigns with theirs, all
through the real assets (``dg.materialize``).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from spotler_pipeline.simulator import Simulator
from spotler_pipeline_tests.pipeline_harness import (
    CAMPAIGN_CATALOG,
    CAMPAIGN_INTERACTIONS,
    MAILING_ASSETS,
    TIMEZONE,
    FullHarness,
    harness_with_all_groups,
)

NOW = datetime(2026, 6, 15, 10, 0, tzinfo=ZoneInfo(TIMEZONE))
HISTORY_DAYS = 21
SNAPSHOT_DAYS = 21
INTERACTIONS = tuple(a for a in MAILING_ASSETS if a not in ("mailings", "mailing_links"))


def start_simulator() -> Simulator:
    return Simulator(seed=23, scale=0.01, now=NOW, days=HISTORY_DAYS + 7).start()


def history(now: datetime = NOW) -> tuple[date, date]:
    """The send / event days loaded: the last ``HISTORY_DAYS`` days up to ``now``."""
    return now.date() - timedelta(days=HISTORY_DAYS - 1), now.date()


def fill_warehouse(sim: Simulator, database: Path) -> FullHarness:
    """Load snapshots, mailings, interactions and campaigns into ``database``."""
    harness = harness_with_all_groups(sim, database)
    for back in range(SNAPSHOT_DAYS - 1, -1, -1):
        sim.set_now(NOW - timedelta(days=back))
        assert harness.materialize(["mailing_stats_snapshots"], day=sim.now.date()).success
    sim.set_now(NOW)
    assert harness.materialize(["mailings", "mailing_links"], days=history()).success
    assert harness.materialize(INTERACTIONS, days=history()).success
    assert harness.materialize(CAMPAIGN_CATALOG).success
    assert harness.materialize(CAMPAIGN_INTERACTIONS, days=history()).success
    return harness
