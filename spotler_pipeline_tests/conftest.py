"""Shared fixtures: a simulator with a fixed clock, a temporary DuckDB file and DAGSTER_HOME."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from spotler_pipeline.defs.config import DeploymentSettings
from spotler_pipeline.simulator import Simulator
from spotler_pipeline.warehouse.lake import LakeSettings
from spotler_pipeline_tests.pipeline_harness import (
    TIMEZONE,
    FullHarness,
    Harness,
    harness_with_all_groups,
)

pytest_plugins = ["spotler_pipeline_tests.conftest_postgres"]

#: A fixed "now" for simulator and pipeline clocks, so tests never depend on today's date.
FIXED_NOW = datetime(2026, 6, 15, 10, 0, tzinfo=ZoneInfo(TIMEZONE))


@pytest.fixture(autouse=True)
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    with Simulator(seed=11, scale=0.01, now=FIXED_NOW, days=21) as sim:
        yield sim


@pytest.fixture(params=["file", "lake"])
def warehouse_backend(request: pytest.FixtureRequest) -> LakeSettings | None:
    """Which warehouse the asset tests write: the DuckDB file, or a DuckLake on a real
    PostgreSQL (a fresh catalog database per test). Tests that concern one backend only
    narrow it with ``@pytest.mark.parametrize("warehouse_backend", ["file"], indirect=True)``."""
    if request.param == "file":
        return None
    return request.getfixturevalue("lake_settings")


@pytest.fixture
def harness(
    simulator: Simulator, tmp_path: Path, warehouse_backend: LakeSettings | None
) -> Harness:
    from spotler_pipeline.definitions import build_definitions

    settings = DeploymentSettings(
        timezone=TIMEZONE,
        partitions_start="2026-01-01",
        interaction_refresh_days=30,
        campaign_refresh_days=3,
        snapshot_lookback_days=60,
    )
    return Harness(
        sim=simulator,
        database=tmp_path / "warehouse" / "spotler.duckdb",
        defs=build_definitions(settings),
        settings=settings,
        lake=warehouse_backend,
    )


@pytest.fixture
def full_harness(
    simulator: Simulator, tmp_path: Path, warehouse_backend: LakeSettings | None
) -> FullHarness:
    """A harness over every group's definitions (mailings, campaigns, forms, contacts), on
    each warehouse backend; modules whose tests need it make it their ``harness``."""
    return harness_with_all_groups(
        simulator, tmp_path / "warehouse" / "spotler.duckdb", warehouse_backend
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow end-to-end tests first (in file order otherwise): with two worker processes
    (``make test``) their files start at once and the short ones fill in behind them,
    instead of one worker running a five-minute file alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
