"""A run costs what its data costs: checks run inline on the days written, whole-
table checks only nightly, campaign interactions are listed once per step and kind for a run's
window, complete recipients are not read again, and statistics snapshots scale with the
request cap."""

from __future__ import annotations

import gc
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import dagster as dg
import httpx
import pytest

from spotler_pipeline.client.settings import ClientSettings
from spotler_pipeline.client.transport import Requester
from spotler_pipeline.defs.checks import ALL_DAYS, NIGHTLY_JOB, masked_sample
from spotler_pipeline.defs.mailing_assets import statistics_of
from spotler_pipeline.simulator import Simulator
from spotler_pipeline_tests.pipeline_harness import (
    CAMPAIGN_CATALOG,
    CAMPAIGN_INTERACTIONS,
    MAILING_ASSETS,
    FullHarness,
    harness_with_all_groups,
)
from spotler_pipeline_tests.sync import InFlight

INTERACTIONS = MAILING_ASSETS[2:]


@pytest.fixture
def harness(simulator: Simulator, tmp_path: Path) -> FullHarness:
    """The DuckDB file backend is enough: what is tested is requests and checks, not writes."""
    return harness_with_all_groups(simulator, tmp_path / "warehouse" / "spotler.duckdb")


def evaluations(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], Any]:
    return {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}


def test_the_code_location_runs_each_run_in_one_process() -> None:
    from spotler_pipeline.definitions import defs

    repo = defs.get_repository_def()
    for job in repo.get_all_jobs():
        assert job.executor_def.name == "in_process", job.name


def test_the_writing_step_checks_the_days_it_wrote(harness: FullHarness) -> None:
    day = harness.busiest_day()
    result = harness.materialize(MAILING_ASSETS, day=day)
    found = evaluations(result)
    for table in INTERACTIONS:
        for name in ("primary_key_unique", "mailings_in_catalogue"):
            check = found[(table, name)]
            assert check.passed, (table, name, check.description)
            assert check.metadata["days_checked"].value == day.isoformat()
    assert found[("mailing_recipients", "recipients_match_sent_count")].passed
    assert found[("mailings", "primary_key_unique")].passed
    # the whole-table versions are not evaluated by a run that writes their tables
    assert not [k for k in found if k[1].endswith(ALL_DAYS)]


def test_inline_checks_see_the_days_written_and_nightly_checks_every_day(
    harness: FullHarness,
) -> None:
    today = harness.now.date()
    send_days = {
        harness.send_day(m) for m in harness.sent_mailings(today - timedelta(days=14), today)
    }
    first, second = sorted(send_days)[-2:]
    assert harness.materialize(MAILING_ASSETS, days=(first, second)).success
    # a duplicated open on the first day, then the second day is written again
    harness.execute(
        "INSERT INTO spotler.mailing_opens SELECT * FROM spotler.mailing_opens "
        "WHERE send_day = ? LIMIT 1",
        [first],
    )
    rewritten = evaluations(harness.materialize(INTERACTIONS, day=second))
    assert rewritten[("mailing_opens", "primary_key_unique")].passed  # not its day
    assert not harness.run_check("mailing_opens", "primary_key_unique", days=(first, first)).passed
    nightly = harness.run_check("mailing_opens", "primary_key_unique")
    assert not nightly.passed and nightly.check_name == "primary_key_unique" + ALL_DAYS

    # the nightly job evaluates the whole-table versions, in a run that writes nothing
    nightly_job = [
        c for c in harness.defs.asset_checks or [] if c.node_def.name == "spotler_mailings_all_days"
    ]
    result = dg.materialize(
        [*nightly_job, *harness.assets_for(MAILING_ASSETS)],
        selection=dg.AssetSelection.checks(*nightly_job),
        resources=harness.resources(),
    )
    found = evaluations(result)
    assert not found[("mailing_opens", "primary_key_unique" + ALL_DAYS)].passed
    assert found[("mailing_clicks", "primary_key_unique" + ALL_DAYS)].passed
    assert NIGHTLY_JOB == "spotler_nightly_checks"


def test_an_inline_check_fails_the_way_its_nightly_version_would(harness: FullHarness) -> None:
    day = harness.busiest_day()
    # interactions written before their mailings' catalogue: orphans, an error, which fails
    # the run (a blocking check) once every check has reported; the rows stay written
    result = harness.materialize(INTERACTIONS, day=day, raise_on_error=False)
    assert not result.success
    assert harness.count("mailing_opens") > 0
    orphans = evaluations(result)[("mailing_opens", "mailings_in_catalogue")]
    assert not orphans.passed
    assert orphans.severity == dg.AssetCheckSeverity.ERROR
    # one orphan group per mailing with opens (an SMS has none)
    assert 1 <= orphans.metadata["problems"].value <= len(harness.sent_mailings(day, day))


def test_daily_refresh_does_not_read_complete_recipients_again(harness: FullHarness) -> None:
    last = harness.now.date()
    first = last - timedelta(days=6)
    assert harness.materialize(MAILING_ASSETS, days=(first, last)).success
    mailings = harness.sent_mailings(first, last)
    stored = harness.count("mailing_recipients")
    assert stored == sum(m.audience for m in mailings) > 0

    harness.sim.reset_log()
    result = harness.materialize(MAILING_ASSETS, days=(first, last))
    assert result.success
    paths = [path for _, path, _, _ in harness.sim.requests]
    assert not [p for p in paths if p.endswith("/recipients")]
    opens_read = [p.split("/")[-2] for p in paths if p.endswith("/opens")]
    assert sorted(opens_read) == sorted(m.encrypted_id for m in mailings)  # one page each
    assert harness.count("mailing_recipients") == stored
    expected = harness.served_counts(INTERACTIONS, first, last)
    assert {t: harness.count(t) for t in INTERACTIONS} == expected
    meta = {
        m.asset_key.path[-1]: m.metadata
        for m in result.asset_materializations_for_node("spotler_mailing_interactions")
    }
    recipients = meta["mailing_recipients"]
    assert recipients["mailings_recipients_complete_kept"].value == len(mailings)
    assert recipients["rows_kept_not_listed"].value == 0  # complete, not "no longer listed"
    found = evaluations(result)
    assert found[("mailing_recipients", "recipients_match_sent_count")].passed
    # nothing of the recipients was rewritten, so their key check has nothing to read
    keys = found[("mailing_recipients", "primary_key_unique")]
    assert keys.passed and keys.metadata["checked"].value == 0
    assert "(0 mailing_ids rewritten)" in keys.metadata["days_checked"].value
    assert found[("mailing_opens", "primary_key_unique")].metadata["checked"].value > 0

    # a mailing whose stored recipients fall short of its sentCount is read again, in full
    short = mailings[0]
    harness.execute(
        "DELETE FROM spotler.mailing_recipients WHERE mailing_id = ? AND contact_encrypted_id "
        "IN (SELECT contact_encrypted_id FROM spotler.mailing_recipients WHERE mailing_id = ? "
        "LIMIT 2)",
        [short.encrypted_id, short.encrypted_id],
    )
    harness.sim.reset_log()
    assert harness.materialize(MAILING_ASSETS, days=(first, last)).success
    read = {p.split("/")[-2] for _, p, _, _ in harness.sim.requests if p.endswith("/recipients")}
    assert read == {short.encrypted_id}
    assert harness.count("mailing_recipients") == stored


def test_campaign_interactions_are_listed_once_per_step_and_kind(harness: FullHarness) -> None:
    last = harness.now.date()
    first = last - timedelta(days=9)
    assert harness.materialize(CAMPAIGN_CATALOG).success
    steps = harness.count("campaign_mailings")
    harness.sim.reset_log()
    result = harness.materialize(CAMPAIGN_INTERACTIONS, days=(first, last))
    assert result.success
    listings = [
        (path, query)
        for _, path, query, _ in harness.sim.requests
        if path.rsplit("/", 1)[-1] in ("recipients", "opens", "clicks", "bounces")
        and "after=0" in query
    ]
    # one listing per step and kind for the ten days, not one per day
    assert len(listings) == 4 * steps
    assert len({p for p, _ in listings}) == 4 * steps
    # split into event days here: each day holds what the API serves for that day
    for day in (first + timedelta(days=i) for i in range(10)):
        expected = harness.served_counts(CAMPAIGN_INTERACTIONS, day, day)
        stored = {t: harness.count(t, "event_day = ?", [day]) for t in CAMPAIGN_INTERACTIONS}
        assert stored == expected, day
    assert all(e.passed for e in evaluations(result).values())


def test_statistics_of_many_mailings_stay_within_the_request_cap() -> None:
    """5,000 mailings, one request each: exactly the cap in flight (each request is held
    until 8 are, then lingers 2 ms, time for more to get in if nothing kept them out), and
    the time is the requests over the cap (625 rounds of 8: ~1.3 s)."""
    in_flight = InFlight(8, linger=0.002)
    client = SimpleNamespace(get_mailing_statistics=in_flight(lambda mailing_id: mailing_id))
    mailings = [SimpleNamespace(encrypted_id=f"m{i}") for i in range(5000)]
    logged: list[str] = []
    log = SimpleNamespace(info=logged.append)
    started = time.monotonic()
    stats = statistics_of(client, mailings, 8, log, progress_interval=0.2)  # type: ignore[arg-type]
    elapsed = time.monotonic() - started
    assert stats == [m.encrypted_id for m in mailings]  # in listing order
    assert in_flight.peak == 8
    assert elapsed < 30  # 625 x 2 ms = 1.25 s, with ample room for a loaded machine
    assert logged[-1].startswith("Statistics of 5,000 mailings in ")


def test_the_reconciliation_builds_the_card_as_the_views_do(harness: FullHarness) -> None:
    """The reconciliation narrows the interaction tables to the contacts it compares before
    aggregating (the views aggregate every contact first); both give the same card. (A
    contact without an external id has a card but no history to reconcile it with.)"""
    from spotler_pipeline.warehouse.quality import campaign_card_of, mailing_card_of

    last = harness.now.date()
    assert harness.materialize(MAILING_ASSETS, days=(last - timedelta(days=6), last)).success
    assert harness.materialize(CAMPAIGN_CATALOG).success
    assert harness.materialize(CAMPAIGN_INTERACTIONS, days=(last - timedelta(days=6), last)).success
    mailing_contacts = "SELECT DISTINCT contact_external_id FROM spotler.mailing_recipients"
    mine = harness.query(f"SELECT * FROM ({mailing_card_of(mailing_contacts)}) ORDER BY ALL")
    view = harness.query(
        "SELECT contact_external_id, mailing_id, opened, clicked, bounce "
        "FROM spotler.contact_mailing_card WHERE contact_external_id IS NOT NULL ORDER BY ALL"
    )
    assert mine == view and any(r[2] for r in view) and any(r[4] for r in view)
    campaign_contacts = (
        "SELECT DISTINCT contact_external_id FROM spotler.campaign_mailing_recipients"
    )
    mine = harness.query(f"SELECT * FROM ({campaign_card_of(campaign_contacts)}) ORDER BY ALL")
    view = harness.query(
        "SELECT contact_external_id, campaign_mailing_id, campaign_subscription_id, opened, "
        "clicked, bounce FROM spotler.contact_campaign_mailing_card "
        "WHERE contact_external_id IS NOT NULL ORDER BY ALL"
    )
    assert mine == view and any(r[3] for r in view)


def test_a_key_check_over_many_rows_runs_in_slices(harness: FullHarness) -> None:
    """Sliced by a hash of the key, a duplicate is still found, and counted once."""
    from spotler_pipeline.warehouse import quality
    from spotler_pipeline.warehouse.mailing_tables import MAILING_OPENS

    day = harness.busiest_day()
    assert harness.materialize(MAILING_ASSETS, day=day).success
    harness.execute("INSERT INTO spotler.mailing_opens SELECT * FROM spotler.mailing_opens LIMIT 3")
    whole = harness.run_check("mailing_opens", "primary_key_unique")
    original = quality.SLICE_ROWS
    try:
        quality.SLICE_ROWS = 50  # many slices on the test's few hundred opens
        warehouse = harness.warehouse()
        with warehouse.read() as conn:
            sliced = quality.duplicate_keys(conn, MAILING_OPENS)
    finally:
        quality.SLICE_ROWS = original
    assert whole.metadata["problems"].value == sliced.problems == 3  # the 3 keys copied
    # The check's event shows contacts by their tags; the sliced finding holds the ids.
    assert whole.metadata["sample"].value == masked_sample(sliced.sample, warehouse.contact_key())


def test_a_page_body_is_freed_once_parsed_without_waiting_for_the_collector() -> None:
    """httpx 0.28 keeps each response and its body stream in a reference cycle; the client
    breaks it, so a fetch holds only the pages in flight (it held ~24 MB of 1 MB bodies more,
    and peaked ~50 MB higher, while the cycles waited for Python's collector)."""
    body = b'{"sentCount": 10}' * 1000
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    requester = Requester(ClientSettings("key-1234", "secret-1234"), transport)
    gc.collect()
    earlier = {id(o) for o in gc.get_objects() if isinstance(o, httpx.Response)}  # other tests'
    gc.disable()  # what is left now is only freed by reference counting
    try:
        sizes = [requester.get("/mailing/M1/statistics", None, len) for _ in range(5)]
        alive = [
            o for o in gc.get_objects() if isinstance(o, httpx.Response) and id(o) not in earlier
        ]
    finally:
        gc.enable()
    assert sizes == [len(body)] * 5
    assert alive == []
