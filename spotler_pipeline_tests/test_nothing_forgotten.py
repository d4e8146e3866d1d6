"""Items Spotler forgets keep their rows; a second account is refused; a committed write
stays a success; a run killed mid-write leaves every table as it was.

Expected counts come from the warehouse before the deletion (what had been stored), never
from the refresh under test.
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from spotler_pipeline.simulator import Simulator
from spotler_pipeline.warehouse.publish import published_path
from spotler_pipeline_tests.conftest import FIXED_NOW
from spotler_pipeline_tests.pipeline_harness import (
    CAMPAIGN_CATALOG,
    CAMPAIGN_INTERACTIONS,
    MAILING_ASSETS,
    FullHarness,
)

INTERACTIONS = ("mailing_recipients", "mailing_opens", "mailing_clicks", "mailing_bounces")
FORM_ASSETS = ("forms", "form_results", "form_answers")


@pytest.fixture
def harness(full_harness: FullHarness) -> FullHarness:
    return full_harness


def _per_mailing(harness: FullHarness, mailing_id: str) -> dict[str, int]:
    return {
        t: harness.count(t, "mailing_id = ?", [mailing_id])
        for t in (*INTERACTIONS, "mailing_links")
    }


@pytest.mark.parametrize("keep_listed", [False, True], ids=["unlisted", "404-after-listing"])
def test_a_deleted_mailing_keeps_every_stored_row(harness: FullHarness, keep_listed: bool) -> None:
    day = harness.busiest_day()
    assert harness.materialize(MAILING_ASSETS, day=day).success
    victim, survivor = [m.encrypted_id for m in harness.sent_mailings(day, day)][:2]
    stored = _per_mailing(harness, victim)
    assert stored["mailing_recipients"] > 0

    harness.sim.delete_mailing(victim, keep_listed=keep_listed)
    result, logs = harness.materialize_logged(MAILING_ASSETS, day=day)

    assert result.success
    assert _per_mailing(harness, victim) == stored
    assert harness.query(
        "SELECT present FROM spotler.mailings WHERE encrypted_id = ?", [victim]
    ) == [(False,)]
    assert harness.query(
        "SELECT present FROM spotler.mailings WHERE encrypted_id = ?", [survivor]
    ) == [(True,)]
    assert "kept" in logs and "present = false" in logs
    meta = {
        m.asset_key.path[-1]: m.metadata
        for m in result.asset_materializations_for_node("spotler_mailing_interactions")
    }
    assert meta["mailing_recipients"]["rows_kept_not_listed"].value == stored["mailing_recipients"]
    missing = meta["mailing_recipients"]["mailings_missing_404"].value
    assert missing == (1 if keep_listed else 0)


@pytest.mark.parametrize("keep_listed", [False, True], ids=["unlisted", "404-after-listing"])
def test_a_deleted_campaign_step_keeps_its_interactions(
    harness: FullHarness, keep_listed: bool
) -> None:
    today = harness.now.date()
    window = (today - timedelta(days=6), today)
    assert harness.materialize(CAMPAIGN_CATALOG).success
    assert harness.materialize(CAMPAIGN_INTERACTIONS, days=window).success
    (victim,) = harness.query(
        "SELECT campaign_mailing_id FROM spotler.campaign_mailing_recipients "
        "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
    )[0]
    stored = {
        t: harness.count(t, "campaign_mailing_id = ?", [victim]) for t in CAMPAIGN_INTERACTIONS
    }
    assert stored["campaign_mailing_recipients"] > 0

    harness.sim.delete_campaign_mailing(victim, keep_listed=keep_listed)
    if not keep_listed:  # the catalogue refresh is what notices a step no longer listed
        assert harness.materialize(CAMPAIGN_CATALOG).success
    result, logs = harness.materialize_logged(CAMPAIGN_INTERACTIONS, days=window)

    assert result.success
    after = {
        t: harness.count(t, "campaign_mailing_id = ?", [victim]) for t in CAMPAIGN_INTERACTIONS
    }
    assert after == stored
    # unlisted: the catalogue flags it; still listed: its reports answered 404 and flag it
    assert harness.query(
        "SELECT present FROM spotler.campaign_mailings WHERE encrypted_id = ?", [victim]
    ) == [(False,)]
    assert "kept" in logs


@pytest.mark.parametrize("keep_listed", [False, True], ids=["unlisted", "404-after-listing"])
def test_a_deleted_form_keeps_its_submissions(harness: FullHarness, keep_listed: bool) -> None:
    today = harness.now.date()
    window = (today - timedelta(days=13), today)
    assert harness.materialize(("forms",)).success
    assert harness.materialize(("form_results", "form_answers"), days=window).success
    (victim,) = harness.query(
        "SELECT form_id FROM spotler.form_results GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
    )[0]
    stored = {
        t: harness.count(t, "form_id = ?", [victim]) for t in ("form_results", "form_answers")
    }
    assert stored["form_results"] > 0

    harness.sim.delete_form(victim, keep_listed=keep_listed)
    assert harness.materialize(("forms",)).success
    result = harness.materialize(("form_results", "form_answers"), days=window)

    assert result.success
    after = {t: harness.count(t, "form_id = ?", [victim]) for t in ("form_results", "form_answers")}
    assert after == stored
    # unlisted: the form list flags it; still listed: the results fetch answered 404
    assert harness.query("SELECT present FROM spotler.forms WHERE id = ?", [victim]) == [(False,)]


def test_a_second_account_is_refused_before_any_row_changes(
    harness: FullHarness, tmp_path: Path
) -> None:
    day = harness.busiest_day()
    assert harness.materialize(MAILING_ASSETS, day=day).success
    before = {t: harness.count(t) for t in (*INTERACTIONS, "mailings")}
    with Simulator(seed=12, scale=0.01, now=FIXED_NOW, consumer_key="another-account") as other:
        from spotler_pipeline.defs.resources import SpotlerResource

        result = harness.materialize(
            MAILING_ASSETS,
            day=day,
            raise_on_error=False,
            spotler=SpotlerResource(
                consumer_key=other.consumer_key,
                consumer_secret=other.consumer_secret,
                base_url=other.base_url,
                timezone="Europe/Amsterdam",
            ),
        )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "another Spotler account" in str(failure.step_failure_data.error)
    assert {t: harness.count(t) for t in (*INTERACTIONS, "mailings")} == before


def test_orphans_from_another_account_fail_the_catalogue_check(harness: FullHarness) -> None:
    day = harness.busiest_day()
    assert harness.materialize(MAILING_ASSETS, day=day).success
    assert harness.run_check("mailing_opens", "mailings_in_catalogue").passed
    harness.execute(
        "INSERT INTO spotler.mailing_opens (send_day, mailing_id, contact_encrypted_id) "
        "VALUES (?, 'NOT-A-MAILING', 'c1')",
        [day],
    )
    check = harness.run_check("mailing_opens", "mailings_in_catalogue")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert "NOT-A-MAILING" in check.description


def test_a_shortfall_against_sent_count_is_an_error_naming_the_mailing(
    harness: FullHarness,
) -> None:
    day = harness.busiest_day()
    assert harness.materialize(MAILING_ASSETS, day=day).success
    mailing = harness.sent_mailings(day, day)[0]
    harness.execute(
        "DELETE FROM spotler.mailing_recipients WHERE mailing_id = ? AND contact_encrypted_id "
        "IN (SELECT contact_encrypted_id FROM spotler.mailing_recipients WHERE mailing_id = ? "
        "LIMIT 3)",
        [mailing.encrypted_id, mailing.encrypted_id],
    )
    check = harness.run_check("mailing_recipients", "recipients_match_sent_count")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert mailing.encrypted_id in check.description
    assert f"sent_count {mailing.audience:,}" in check.description
    assert f"recipients {mailing.audience - 3:,}" in check.description


@pytest.mark.parametrize("warehouse_backend", ["file"], indirect=True)  # a lake publishes nothing
def test_a_publish_failure_after_the_commit_does_not_fail_the_run(
    harness: FullHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (``spotler_pipeline.defs`` is also the package's Definitions object, so import_module)
    resources = importlib.import_module("spotler_pipeline.defs.resources")

    def broken(*_: object, **__: object) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(resources, "publish_snapshot", broken)
    day = harness.busiest_day()
    result, logs = harness.materialize_logged(MAILING_ASSETS, day=day)
    assert result.success
    assert harness.count("mailing_recipients") == sum(
        m.audience for m in harness.sent_mailings(day, day)
    )
    assert "publishing the read-only copy for notebooks failed" in logs
    assert not published_path(harness.database).exists()


KILLED_RUN = textwrap.dedent(
    """
    import sys, time
    from datetime import date
    from pathlib import Path
    import spotler_pipeline.warehouse.writes as writes
    from spotler_pipeline.simulator import Simulator
    from spotler_pipeline_tests.conftest import FIXED_NOW
    from spotler_pipeline_tests.pipeline_harness import MAILING_ASSETS, harness_with_all_groups

    from spotler_pipeline.warehouse.lake import LakeSettings

    database, marker, day = Path(sys.argv[1]), Path(sys.argv[2]), date.fromisoformat(sys.argv[3])
    lake = LakeSettings(sys.argv[4], sys.argv[5]) if len(sys.argv) > 4 else None
    real = writes.insert_staged
    calls = []

    def slow_insert(*args, **kwargs):
        n = real(*args, **kwargs)
        calls.append(n)
        if len(calls) == 2:  # two tables written inside the transaction, more to come
            marker.write_text("mid-write")
            time.sleep(120)
        return n

    writes.insert_staged = slow_insert
    with Simulator(seed=11, scale=0.01, now=FIXED_NOW, days=21) as sim:
        sim.advance(__import__("datetime").timedelta(days=2))  # new opens: the data differs
        harness = harness_with_all_groups(sim, database, lake)
        harness.materialize(MAILING_ASSETS, day=day)
    """
)


def test_a_run_killed_mid_write_leaves_every_table_as_before(
    harness: FullHarness, tmp_path: Path
) -> None:
    day = harness.busiest_day()
    assert harness.materialize(MAILING_ASSETS, day=day).success
    tables = (*INTERACTIONS, "mailings", "mailing_links")
    before = {t: harness.query(f"SELECT * FROM spotler.{t} ORDER BY ALL") for t in tables}
    marker = tmp_path / "marker"
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            KILLED_RUN,
            str(harness.database),
            str(marker),
            day.isoformat(),
            *([harness.lake.catalog, str(harness.lake.data_path)] if harness.lake else []),
        ],
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        deadline = time.monotonic() + 240
        while not marker.exists():
            assert child.poll() is None, "the run ended before its write"
            assert time.monotonic() < deadline, "the run never reached its write"
            time.sleep(0.1)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
    staging = harness.database.parent / ".staging"
    assert any(staging.iterdir()), "the killed run's staging folder should still be there"
    after = {t: harness.query(f"SELECT * FROM spotler.{t} ORDER BY ALL") for t in tables}
    assert after == before
    # the next run succeeds and removes what the killed run left
    assert harness.materialize(MAILING_ASSETS, day=day).success
    assert list(staging.iterdir()) == []
