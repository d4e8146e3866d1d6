"""The campaign assets end to end against the simulator, into a temporary DuckDB file."""

from datetime import timedelta

import pytest

from spotler_pipeline.simulator import Fault
from spotler_pipeline_tests.pipeline_harness import (
    CAMPAIGN_CATALOG,
    CAMPAIGN_INTERACTIONS,
    FullHarness,
)


@pytest.fixture
def harness(full_harness: FullHarness) -> FullHarness:
    return full_harness


def ids(harness: FullHarness, table: str, where: str = "true") -> set[str]:
    return {r[0] for r in harness.query(f"SELECT encrypted_id FROM spotler.{table} WHERE {where}")}


def test_catalogue_lands_whole_with_triggers_steps_and_links(harness: FullHarness) -> None:
    assert harness.materialize(CAMPAIGN_CATALOG).success
    # the simulator's own account is the truth, not what a client reads back from it
    account = harness.sim.account
    campaigns = account.campaigns
    steps = [s for x in campaigns for s in account.live_steps(x)]
    assert ids(harness, "campaigns", "present") == {x.encrypted_id for x in campaigns}
    assert len(campaigns) > 0
    assert harness.count("campaign_triggers") == sum(len(x.triggers) for x in campaigns)
    assert ids(harness, "campaign_mailings", "present") == {s.encrypted_id for s in steps}
    assert harness.count("campaign_mailings") == len(steps)
    stored_links = harness.query(
        "SELECT campaign_mailing_id, count(*) FROM spotler.campaign_mailing_links GROUP BY ALL"
    )
    assert dict(stored_links) == {s.encrypted_id: len(s.links) for s in steps if s.links}
    # triggers are kept on the campaign row too, and steps keep their order
    names = harness.query(
        "SELECT trigger_names FROM spotler.campaigns WHERE len(trigger_names) > 1"
    )
    assert names
    first_steps = harness.query("SELECT count(*) FROM spotler.campaign_mailings WHERE position = 0")
    assert first_steps[0][0] == len(campaigns)


def test_a_campaign_or_step_that_disappears_is_kept_but_marked_absent(harness: FullHarness) -> None:
    assert harness.materialize(CAMPAIGN_CATALOG).success
    before = {t: harness.count(t) for t in CAMPAIGN_CATALOG}
    first_seen = harness.query("SELECT min(first_seen_at) FROM spotler.campaigns")[0][0]

    account = harness.sim.account
    gone_campaign = account.campaigns[-1]
    account.campaigns.remove(gone_campaign)
    del account.campaigns_by_id[gone_campaign.encrypted_id]
    kept_campaign = account.campaigns[0]
    gone_step = kept_campaign.steps.pop()
    harness.sim.advance(timedelta(days=1))

    result = harness.materialize(CAMPAIGN_CATALOG)
    assert result.success

    assert {t: harness.count(t) for t in CAMPAIGN_CATALOG} == before  # nothing dropped
    absent = harness.query(
        "SELECT encrypted_id, last_seen_at < (SELECT max(last_seen_at) FROM spotler.campaigns) "
        "FROM spotler.campaigns WHERE NOT present"
    )
    assert absent == [(gone_campaign.encrypted_id, True)]
    absent_steps = {
        r[0]
        for r in harness.query(
            "SELECT encrypted_id FROM spotler.campaign_mailings WHERE NOT present"
        )
    }
    assert absent_steps == {gone_step.encrypted_id, *(s.encrypted_id for s in gone_campaign.steps)}
    assert harness.count("campaign_triggers", "NOT present") == len(gone_campaign.triggers)
    # when each item was first seen survives the refresh
    assert harness.query("SELECT min(first_seen_at) FROM spotler.campaigns")[0][0] == first_seen
    meta = {
        m.asset_key.path[-1]: m.metadata
        for m in result.asset_materializations_for_node("spotler_campaigns")
    }
    assert meta["campaigns"]["rows_no_longer_listed"].value == 1


def test_one_event_day_lands_every_row_the_api_serves(harness: FullHarness) -> None:
    day = harness.now.date() - timedelta(days=2)
    assert harness.materialize(CAMPAIGN_CATALOG).success  # steps_in_catalogue blocks
    result = harness.materialize(CAMPAIGN_INTERACTIONS, day=day)
    assert result.success
    expected = harness.served_counts(CAMPAIGN_INTERACTIONS, day, day)
    assert {t: harness.count(t) for t in CAMPAIGN_INTERACTIONS} == expected
    assert expected["campaign_mailing_recipients"] > 0 and expected["campaign_mailing_opens"] > 0
    assert {
        r[0] for r in harness.query("SELECT DISTINCT event_day FROM spotler.campaign_mailing_opens")
    } == {day}
    nulls = harness.query(
        "SELECT count(*) FROM spotler.campaign_mailing_clicks "
        "WHERE campaign_subscription_id IS NULL OR contact_external_id IS NULL "
        "OR contact_encrypted_id IS NULL OR click_date IS NULL "
        "OR link_id IS NULL OR campaign_id IS NULL OR campaign_mailing_id IS NULL"
    )
    assert nulls[0][0] == 0
    meta = {
        m.asset_key.path[-1]: m.metadata
        for m in result.asset_materializations_for_node("spotler_campaign_interactions")
    }
    assert (
        meta["campaign_mailing_opens"]["rows_written"].value == expected["campaign_mailing_opens"]
    )


def test_range_and_idempotent_rerun(harness: FullHarness) -> None:
    last = harness.now.date()
    first = last - timedelta(days=9)
    assert harness.materialize(CAMPAIGN_CATALOG).success  # steps_in_catalogue blocks
    assert harness.materialize(CAMPAIGN_INTERACTIONS, days=(first, last)).success
    expected = harness.served_counts(CAMPAIGN_INTERACTIONS, first, last)
    assert {t: harness.count(t) for t in CAMPAIGN_INTERACTIONS} == expected

    day = last - timedelta(days=4)
    others = {
        t: harness.query(f"SELECT * FROM spotler.{t} WHERE event_day <> ? ORDER BY ALL", [day])
        for t in CAMPAIGN_INTERACTIONS
    }
    assert harness.materialize(CAMPAIGN_INTERACTIONS, day=day).success
    assert harness.materialize(CAMPAIGN_INTERACTIONS, days=(day, day)).success
    assert {t: harness.count(t) for t in CAMPAIGN_INTERACTIONS} == expected
    assert {
        t: harness.query(f"SELECT * FROM spotler.{t} WHERE event_day <> ? ORDER BY ALL", [day])
        for t in CAMPAIGN_INTERACTIONS
    } == others


def test_a_contact_passing_a_campaign_twice_keeps_both_subscriptions(harness: FullHarness) -> None:
    last = harness.now.date()
    assert harness.materialize(CAMPAIGN_CATALOG).success  # steps_in_catalogue blocks
    assert harness.materialize(
        CAMPAIGN_INTERACTIONS, days=(last - timedelta(days=13), last)
    ).success
    twice = harness.query(
        "SELECT contact_external_id, campaign_mailing_id, count(DISTINCT campaign_subscription_id) "
        "FROM spotler.campaign_mailing_recipients GROUP BY ALL HAVING count(*) > 1"
    )
    assert twice, "the simulator's repeat campaigns should send a step to a contact twice"
    contact, step, subscriptions = twice[0]
    assert subscriptions >= 2
    with harness.client() as c:
        history = [
            h
            for h in c.iter_contact_campaign_mailing_history(contact)
            if h.campaign_mailing and h.campaign_mailing.encrypted_id == step
        ]
    stored = {
        r[0]
        for r in harness.query(
            "SELECT campaign_subscription_id FROM spotler.campaign_mailing_recipients "
            "WHERE contact_external_id = ? AND campaign_mailing_id = ?",
            [contact, step],
        )
    }
    assert stored <= {h.campaign_subscription_id for h in history}
    assert len(stored) == subscriptions


def test_late_events_land_when_recent_days_are_refreshed(harness: FullHarness) -> None:
    today = harness.now.date()
    assert harness.materialize(CAMPAIGN_CATALOG).success  # steps_in_catalogue blocks
    assert harness.materialize(CAMPAIGN_INTERACTIONS, day=today).success
    before = harness.count("campaign_mailing_opens") + harness.count("campaign_mailing_recipients")
    harness.sim.advance(timedelta(hours=12))
    assert harness.materialize(CAMPAIGN_INTERACTIONS, day=today).success
    after = harness.count("campaign_mailing_opens") + harness.count("campaign_mailing_recipients")
    assert after > before
    expected = harness.served_counts(CAMPAIGN_INTERACTIONS, today, today)
    assert {t: harness.count(t) for t in CAMPAIGN_INTERACTIONS} == expected


def test_checks_pass_on_loaded_data_and_fail_on_an_unknown_link(harness: FullHarness) -> None:
    last = harness.now.date()
    harness.materialize(CAMPAIGN_CATALOG)
    harness.materialize(CAMPAIGN_INTERACTIONS, days=(last - timedelta(days=3), last))
    for table in CAMPAIGN_INTERACTIONS:
        assert harness.run_check(table, "primary_key_unique").passed, table
        assert harness.run_check(table, "steps_in_catalogue").passed, table
    assert harness.run_check("campaign_mailing_clicks", "click_links_exist").passed

    harness.execute(
        "UPDATE spotler.campaign_mailing_clicks SET link_id = 'no-such-link' WHERE rowid = 0"
    )
    failed = harness.run_check("campaign_mailing_clicks", "click_links_exist")
    assert not failed.passed
    assert failed.metadata["sample"].value[0]["link_id"] == "no-such-link"


def test_failure_mid_fetch_leaves_the_partition_as_it_was(harness: FullHarness) -> None:
    day = harness.now.date() - timedelta(days=1)
    assert harness.materialize(CAMPAIGN_CATALOG).success  # steps_in_catalogue blocks
    assert harness.materialize(CAMPAIGN_INTERACTIONS, day=day).success
    snapshot = {t: all_rows(harness, t) for t in CAMPAIGN_INTERACTIONS}
    # more events by now, then the clicks endpoint breaks for good after a few requests
    harness.sim.advance(timedelta(hours=6))
    harness.sim.inject(
        Fault(kind="not_json", path_pattern=r"/clicks", times=1000, after_requests=2)
    )
    result = harness.materialize(CAMPAIGN_INTERACTIONS, day=day, raise_on_error=False)
    assert not result.success
    assert {t: all_rows(harness, t) for t in CAMPAIGN_INTERACTIONS} == snapshot


def all_rows(harness: FullHarness, table: str) -> list[tuple]:
    return harness.query(f"SELECT * FROM spotler.{table} ORDER BY ALL")
