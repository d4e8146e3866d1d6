"""The mailing assets end to end against the simulator, into a temporary DuckDB file."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import pytest

from spotler_pipeline.simulator import Fault
from spotler_pipeline_tests.pipeline_harness import MAILING_ASSETS, Harness

INTERACTIONS = ("mailing_recipients", "mailing_opens", "mailing_clicks", "mailing_bounces")


def stored_mailings(harness: Harness) -> dict[str, date]:
    """Each stored mailing's id and send day."""
    return dict(harness.query("SELECT encrypted_id, send_day FROM spotler.mailings"))


def stored_per_day(harness: Harness, table: str) -> dict[date, int]:
    return dict(harness.query(f"SELECT send_day, count(*) FROM spotler.{table} GROUP BY ALL"))


def test_one_send_day_lands_every_row_the_api_serves(harness: Harness) -> None:
    day = harness.busiest_day()
    result = harness.materialize(MAILING_ASSETS, day=day)
    assert result.success

    # the simulator's own account is the truth, not what a client reads back from it
    mailings = harness.sent_mailings(day, day)
    assert len(mailings) >= 2
    assert stored_mailings(harness) == {m.encrypted_id: day for m in mailings}
    expected = harness.served_counts(MAILING_ASSETS, day, day)
    assert {t: harness.count(t) for t in MAILING_ASSETS} == expected
    assert expected["mailing_recipients"] == sum(m.audience for m in mailings)
    assert expected["mailing_links"] == sum(len(m.links) for m in mailings) > 0

    # every interaction row carries the contact's encrypted id, the mailing and (but
    # recipients) a time; its external id unless the contact has none (optional in Spotler)
    nulls = harness.query(
        "SELECT count(*) FROM spotler.mailing_opens WHERE contact_encrypted_id IS NULL "
        "OR mailing_id IS NULL OR open_date IS NULL"
    )
    assert nulls[0][0] == 0
    account, now = harness.sim.account, int(harness.now.timestamp())
    without_external_id = sum(
        account.contacts.external_ids(opens.contact[: opens.visible(now)]).count(None)
        for opens in (account.mailing_data(m).opens for m in mailings)
    )
    assert harness.count("mailing_opens", "contact_external_id IS NULL") == without_external_id

    meta = result.asset_materializations_for_node("spotler_mailing_interactions")
    by_key = {m.asset_key.path[-1]: m.metadata for m in meta}
    assert by_key["mailing_opens"]["rows_written"].value == harness.count("mailing_opens")
    assert by_key["mailing_opens"]["api_requests"].value > 0


@pytest.mark.parametrize("warehouse_backend", ["file"], indirect=True)
def test_row_count_is_the_whole_tables_and_rows_written_the_runs(harness: Harness) -> None:
    """The UI's "Row count" is the table's; what one run wrote is ``rows_written``."""
    last = harness.now.date()
    day = harness.busiest_day()
    assert harness.materialize(
        ["mailings", "mailing_links"], days=(last - timedelta(days=20), last)
    ).success
    result = harness.materialize(["mailings", "mailing_links"], day=day)
    meta = {
        m.asset_key.path[-1]: m.metadata
        for m in result.asset_materializations_for_node("spotler_mailings")
    }
    written = meta["mailings"]["rows_written"].value
    assert written == harness.count("mailings", "send_day = ?", [day]) > 0
    assert meta["mailings"]["dagster/row_count"].value == harness.count("mailings") > written


def test_multi_day_range_in_one_run(harness: Harness) -> None:
    last = harness.now.date()
    first = last - timedelta(days=6)
    result = harness.materialize(MAILING_ASSETS, days=(first, last))
    assert result.success
    mailings = harness.sent_mailings(first, last)
    assert stored_mailings(harness) == {m.encrypted_id: harness.send_day(m) for m in mailings}
    expected = harness.served_counts(MAILING_ASSETS, first, last)
    assert {t: harness.count(t) for t in MAILING_ASSETS} == expected
    for table in MAILING_ASSETS:  # and each row on its own send day
        assert stored_per_day(harness, table) == harness.served_per_day(table, first, last)


def test_rerun_replaces_exactly_its_partition(harness: Harness) -> None:
    last = harness.now.date()
    harness.materialize(MAILING_ASSETS, days=(last - timedelta(days=6), last))
    day = harness.busiest_day(lookback=6)
    before_all = {t: harness.count(t) for t in (*INTERACTIONS, "mailings")}
    others = {t: harness.count(t, "send_day <> ?", [day]) for t in INTERACTIONS}

    harness.materialize(MAILING_ASSETS, day=day)

    assert {t: harness.count(t) for t in (*INTERACTIONS, "mailings")} == before_all
    assert {t: harness.count(t, "send_day <> ?", [day]) for t in INTERACTIONS} == others


def test_failure_mid_fetch_leaves_tables_as_they_were(harness: Harness) -> None:
    day = harness.busiest_day()
    harness.materialize(MAILING_ASSETS, day=day)
    snapshot = {t: harness.query(f"SELECT * FROM spotler.{t} ORDER BY ALL") for t in INTERACTIONS}

    # the clock moves (more opens to fetch), then the opens endpoint breaks for good midway
    harness.sim.advance(timedelta(days=2))
    harness.sim.inject(Fault(kind="not_json", path_pattern=r"/opens", times=1000, after_requests=1))
    result = harness.materialize(INTERACTIONS, day=day, raise_on_error=False)

    assert not result.success
    assert {
        t: harness.query(f"SELECT * FROM spotler.{t} ORDER BY ALL") for t in INTERACTIONS
    } == snapshot


def test_late_opens_land_when_the_partition_is_refreshed(harness: Harness) -> None:
    day = harness.now.date() - timedelta(days=1)
    day = harness.busiest_day(lookback=3)
    harness.materialize(MAILING_ASSETS, day=day)
    opens_before = harness.count("mailing_opens")

    harness.sim.advance(timedelta(days=4))
    harness.materialize(["mailing_opens"], day=day)

    assert harness.count("mailing_opens") > opens_before
    assert (
        harness.count("mailing_opens")
        == harness.served_counts(["mailing_opens"], day, day)["mailing_opens"]
    )


def test_snapshot_of_today_and_refusal_of_a_past_day(harness: Harness) -> None:
    today = harness.now.date()
    assert harness.materialize(["mailing_stats_snapshots"], day=today).success
    rows = harness.query(
        "SELECT count(*), min(snapshot_day), max(days_since_send), count(DISTINCT mailing_id) "
        "FROM spotler.mailing_stats_snapshots"
    )
    n, snap_day, max_age, distinct = rows[0]
    assert n == distinct > 0 and snap_day == today and max_age <= 60
    # conversionValue is stored as Spotler serves it, whole cents, and absent stays NULL
    stored = dict(
        harness.query(
            "SELECT mailing_id, conversion_value_cents FROM spotler.mailing_stats_snapshots"
        )
    )
    client = harness.client()
    served = {m: client.get_mailing_statistics(m).conversion_value for m in stored}
    assert stored == served and all(v is None or type(v) is int for v in stored.values())

    # the next day: a second snapshot, the first kept
    harness.sim.advance(timedelta(days=1))
    assert harness.materialize(["mailing_stats_snapshots"], day=today + timedelta(days=1)).success
    assert harness.count("mailing_stats_snapshots", "snapshot_day = ?", [today]) == n
    latest = harness.query("SELECT min(snapshot_day) FROM spotler.mailing_stats_latest")[0][0]
    assert latest == today + timedelta(days=1)

    with pytest.raises(dg.Failure, match="only reports statistics as they are now"):
        harness.materialize(["mailing_stats_snapshots"], day=today - timedelta(days=3))
    assert (
        harness.count("mailing_stats_snapshots", "snapshot_day = ?", [today - timedelta(days=3)])
        == 0
    )


def test_missing_credentials_fail_naming_the_env_vars(harness: Harness) -> None:
    from spotler_pipeline.defs.resources import SpotlerResource

    with pytest.raises(dg.Failure, match="SPOTLER_CONSUMER_KEY and SPOTLER_CONSUMER_SECRET"):
        harness.materialize(MAILING_ASSETS[:2], day=harness.now.date(), spotler=SpotlerResource())


def test_wrong_credentials_fail_clearly_without_leaking_the_secret(harness: Harness) -> None:
    from spotler_pipeline.defs.resources import SpotlerResource

    wrong = SpotlerResource(
        consumer_key=harness.sim.consumer_key,
        consumer_secret="not-the-secret-xyz",
        base_url=harness.sim.base_url,
    )
    result = harness.materialize(
        MAILING_ASSETS[:2], day=harness.now.date(), spotler=wrong, raise_on_error=False
    )
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error
    text = failure.to_string()
    assert "SPOTLER_CONSUMER_SECRET" in text
    assert "not-the-secret-xyz" not in text
