"""An error a user can act on fails the step with the project's one line: the run's
STEP_FAILURE event carries it as the failure's description, with no chained traceback of
our code or the libraries behind it (only Dagster's own frames down to the raise)."""

from __future__ import annotations

import dataclasses
import gzip
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from spotler_pipeline.client import ClientSettings
from spotler_pipeline.defs.resources import SpotlerResource, WarehouseResource
from spotler_pipeline_tests.pipeline_harness import TIMEZONE, Harness

pytestmark = pytest.mark.parametrize("warehouse_backend", ["file"], indirect=True)


class OneAttempt(SpotlerResource):
    """The API resource with retries off: an unreachable Spotler fails at the first try."""

    def client_settings(self) -> ClientSettings:
        return dataclasses.replace(super().client_settings(), max_attempts=1)


@pytest.fixture
def held_file(harness: Harness) -> Iterator[int]:
    """Another process holding the warehouse file open for writing; yields its PID."""
    harness.database.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb,time; c=duckdb.connect({str(harness.database)!r}); "
            "print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()


def _fields(h: Harness, **changes: Any) -> dict[str, Any]:
    fields = {
        "consumer_key": h.sim.consumer_key,
        "consumer_secret": h.sim.consumer_secret,
        "base_url": h.sim.base_url,
        "timezone": TIMEZONE,
    }
    return {**fields, **changes}


def _first_release_file(h: Harness) -> Path:
    """A copy of the warehouse file release 0.1.0 wrote (DuckDB 2.0.1)."""
    path = h.database.parent / "release-0.1.0" / "spotler.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    fixture = Path(__file__).parent / "fixtures" / "warehouse_v0_1_0.duckdb.gz"
    with gzip.open(fixture, "rb") as src, path.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    return path


# Each user error: what the run gets, and what the line it must show says.
CASES: dict[str, tuple[Callable[[Harness], dict[str, Any]], str, str]] = {
    "credentials": (
        lambda h: {"spotler": SpotlerResource(**_fields(h, consumer_secret="wrong"))},
        "mailings",
        "Spotler rejected the consumer key/secret",
    ),
    "configuration": (
        lambda h: {"spotler": SpotlerResource(**_fields(h, timezone="Mars/Base"))},
        "mailings",
        "The Spotler resource's configuration is not usable: unknown time zone 'Mars/Base'",
    ),
    "unreachable": (
        lambda h: {"spotler": OneAttempt(**_fields(h, base_url="http://127.0.0.1:9"))},
        "mailings",
        "Cannot reach Spotler at 127.0.0.1:9 (SPOTLER_BASE_URL)",
    ),
    "first release's file": (
        lambda h: {"warehouse": WarehouseResource(database=str(_first_release_file(h)))},
        "mailings",
        "was written by DuckDB 2.0.1 (spotler_pipeline 0.1.0)",
    ),
    "refused partition": (
        lambda h: {},
        "mailing_stats_snapshots",
        "Refusing snapshot partition(s)",
    ),
}


def _failure(harness: Harness, asset: str, day: date, **resources: Any) -> Any:
    """The STEP_FAILURE event's data of a failed run of ``asset`` for ``day``."""
    with dg.DagsterInstance.ephemeral() as instance:
        result = harness.materialize(
            [asset], day=day, raise_on_error=False, instance=instance, **resources
        )
        assert not result.success
        (record,) = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    assert record.dagster_event is not None
    return record.dagster_event.step_failure_data


def _assert_plain(failure: Any, starts: str) -> str:
    description = failure.user_failure_data.description
    assert starts in description, description
    assert "\n" not in description
    assert failure.error.message.strip().endswith(description)
    assert failure.error.cause is None and failure.error.context is None
    # The frames shown are Dagster's down to the raise: none of the client, the warehouse or
    # the libraries under them.
    ours = [f for f in failure.error.stack if "/httpx" in f or "/duckdb" in f or "/client/" in f]
    assert ours == []
    return description


@pytest.mark.parametrize("case", CASES, ids=CASES)
def test_a_user_error_fails_the_step_with_its_one_line(harness: Harness, case: str) -> None:
    resources, asset, starts = CASES[case]
    yesterday = harness.now.date() - timedelta(days=1)
    _assert_plain(_failure(harness, asset, yesterday, **resources(harness)), starts)


def test_the_warehouse_held_by_another_process_names_its_pid(
    harness: Harness, held_file: int
) -> None:
    warehouse = WarehouseResource(database=str(harness.database), lock_timeout_seconds=1.0)
    failure = _failure(harness, "mailings", harness.now.date(), warehouse=warehouse)
    description = _assert_plain(failure, "The warehouse file")
    assert f"(PID {held_file})" in description
    assert failure.user_failure_data.metadata["held_by"].value.endswith(f"(PID {held_file})")


def test_a_bug_keeps_its_stack_trace(harness: Harness, tmp_path: Path) -> None:
    """A failure that is not one of ours to explain (here a database path that is a folder)
    keeps the traceback a developer needs."""
    folder = tmp_path / "a_folder.duckdb"
    folder.mkdir()
    broken = WarehouseResource(database=str(folder))
    failure = _failure(harness, "mailings", harness.now.date(), warehouse=broken)
    assert failure.user_failure_data is None
    assert failure.error.cause is not None
