"""The copy for readers is published once per run, when its steps are done.

A run of the mailings group writes twice (the catalogue, then its interactions); each write
used to copy the whole DuckDB file for readers, a cost that grows with the warehouse. Now
the run publishes once, at its end, so readers see its tables change together, and the
checks inside the run read what it wrote from the file itself.
"""

from __future__ import annotations

import importlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from spotler_pipeline.warehouse.publish import open_published, published_path
from spotler_pipeline_tests.pipeline_harness import MAILING_ASSETS, Harness, key

pytestmark = pytest.mark.parametrize("warehouse_backend", ["file"], indirect=True)

# ``spotler_pipeline.defs`` is also the package's Definitions object, hence import_module.
resources = importlib.import_module("spotler_pipeline.defs.resources")


def _published_rows(database: Path, table: str) -> int:
    con = open_published(database)
    try:
        return int(con.execute(f"SELECT count(*) FROM spotler.{table}").fetchone()[0])
    finally:
        con.close()


def _checked(result: dg.ExecuteInProcessResult, table: str, check: str) -> int:
    (evaluation,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.asset_key == key(table) and e.check_name == check
    ]
    return int(evaluation.metadata["checked"].value)


def test_a_run_writing_twice_publishes_once_when_its_steps_are_done(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = resources.publish_snapshot
    published: list[dict[str, int]] = []

    def counting(conn: Any, database: Path) -> Path:
        target = real(conn, database)
        published.append(
            {t: _published_rows(database, t) for t in ("mailings", "mailing_recipients")}
        )
        return target

    monkeypatch.setattr(resources, "publish_snapshot", counting)
    day = harness.busiest_day()
    result = harness.materialize(list(MAILING_ASSETS), day=day)

    assert result.success
    stored = {t: harness.count(t) for t in ("mailings", "mailing_recipients")}
    assert all(stored.values())
    # one copy, made after both writing steps, holding both
    assert published == [stored]


def test_checks_in_a_run_read_what_it_wrote_not_the_last_published_copy(
    harness: Harness,
) -> None:
    first = harness.busiest_day()
    sent = {harness.send_day(m) for m in harness.sent_mailings(first - timedelta(days=14), first)}
    earlier = max(d for d in sent if d < first)
    assert harness.materialize(list(MAILING_ASSETS), day=earlier).success
    before = _published_rows(harness.database, "mailing_recipients")

    result = harness.materialize(list(MAILING_ASSETS), day=first)

    assert result.success
    written = harness.count("mailing_recipients", "send_day = ?", [first])
    assert written > 0
    # the key check of the second run counted that day's rows, which the copy published by
    # the first run did not hold
    assert _checked(result, "mailing_recipients", "primary_key_unique") == written
    assert _published_rows(harness.database, "mailing_recipients") == before + written


def test_a_write_outside_a_run_publishes_at_once(harness: Harness) -> None:
    harness.materialize(list(MAILING_ASSETS), day=harness.busiest_day())
    before = published_path(harness.database).stat().st_mtime_ns
    harness.warehouse().write([])  # no tables: a write all the same, outside any run
    assert published_path(harness.database).stat().st_mtime_ns > before
