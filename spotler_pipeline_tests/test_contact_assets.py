"""The contact histories and the card views end to end against the simulator."""

from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from spotler_pipeline.defs.metadata import RANGE_END_TAG, RANGE_START_TAG
from spotler_pipeline.simulator import Simulator
from spotler_pipeline.warehouse.lake import LakeSettings
from spotler_pipeline.warehouse.lookups import active_contacts
from spotler_pipeline_tests.pipeline_harness import (
    CAMPAIGN_CATALOG,
    CAMPAIGN_INTERACTIONS,
    MAILING_ASSETS,
    FullHarness,
    harness_with_all_groups,
    key,
)

HISTORIES = ("contact_mailing_history", "contact_campaign_mailing_history", "contact_form_history")
LOADED_DAYS = 7


@pytest.fixture
def harness(
    simulator: Simulator, tmp_path: Path, warehouse_backend: LakeSettings | None
) -> FullHarness:
    h = harness_with_all_groups(
        simulator, tmp_path / "warehouse" / "spotler.duckdb", warehouse_backend
    )
    last = h.now.date()
    days = (last - timedelta(days=LOADED_DAYS - 1), last)
    assert h.materialize(MAILING_ASSETS, days=days).success
    assert h.materialize(CAMPAIGN_CATALOG).success
    assert h.materialize(CAMPAIGN_INTERACTIONS, days=days).success
    assert h.materialize(["forms"]).success
    assert h.materialize(["form_results", "form_answers"], days=days).success
    return h


def active(harness: FullHarness, day) -> set[str]:  # noqa: ANN001
    start = harness.day_start(day)
    end = harness.day_start(day + timedelta(days=1))
    with harness.warehouse().read() as conn:
        found = active_contacts(conn, day, start, end)
    return found["interactions"] | found["form_answers"]


def test_one_day_reads_the_history_of_every_active_contact(harness: FullHarness) -> None:
    day = harness.now.date() - timedelta(days=1)
    result = harness.materialize(HISTORIES, day=day)
    assert result.success
    contacts = active(harness, day)
    assert len(contacts) > 5
    stored = {
        r[0]
        for r in harness.query(
            "SELECT contact_external_id FROM spotler.contact_mailing_history UNION "
            "SELECT contact_external_id FROM spotler.contact_campaign_mailing_history"
        )
    }
    assert stored <= contacts and len(stored) >= len(contacts) * 0.9
    assert {
        r[0]
        for r in harness.query("SELECT DISTINCT activity_day FROM spotler.contact_mailing_history")
    } == {day}

    sample = sorted(stored)[:5]
    with harness.client() as c:
        for contact in sample:
            api = list(c.iter_contact_campaign_mailing_history(contact))
            assert harness.count(
                "contact_campaign_mailing_history", "contact_external_id = ?", [contact]
            ) == len(api)
            api = list(c.iter_contact_mailing_history(contact))
            assert harness.count(
                "contact_mailing_history", "contact_external_id = ?", [contact]
            ) == len(api)
    meta = {
        m.asset_key.path[-1]: m.metadata
        for m in result.asset_materializations_for_node("spotler_contact_histories")
    }
    assert meta["contact_mailing_history"]["contacts"].value == len(contacts)


def test_a_range_and_an_idempotent_rerun(harness: FullHarness) -> None:
    last = harness.now.date()
    first = last - timedelta(days=2)
    assert harness.materialize(HISTORIES, days=(first, last)).success
    days = {
        r[0]
        for r in harness.query("SELECT DISTINCT activity_day FROM spotler.contact_mailing_history")
    }
    assert days == {first, first + timedelta(days=1), last}
    snapshot = {t: harness.query(f"SELECT * FROM spotler.{t} ORDER BY ALL") for t in HISTORIES}
    assert harness.materialize(HISTORIES, day=first + timedelta(days=1)).success
    assert {
        t: harness.query(f"SELECT * FROM spotler.{t} ORDER BY ALL") for t in HISTORIES
    } == snapshot
    for table in HISTORIES:
        assert harness.run_check(table, "primary_key_unique").passed


def test_reconciliation_passes_on_consistent_data_and_fails_on_inconsistent(
    harness: FullHarness,
) -> None:
    day = harness.now.date() - timedelta(days=1)
    assert harness.materialize(HISTORIES, day=day).success
    mailing = harness.run_check("contact_mailing_history", "card_matches_interactions")
    campaign = harness.run_check("contact_campaign_mailing_history", "card_matches_interactions")
    forms = harness.run_check("contact_form_history", "submissions_match_form_results")
    assert mailing.passed, mailing.metadata["sample"].value
    assert campaign.passed, campaign.metadata["sample"].value
    assert forms.passed, forms.metadata["sample"].value
    assert mailing.metadata["checked"].value > 0 and campaign.metadata["checked"].value > 0

    # lose some interactions: the card no longer agrees with Spotler's history. The rows are
    # chosen where the history and the interaction tables both have them (an unordered
    # LIMIT 1 over the history alone could pick a mailing of a day not loaded, which the
    # check rightly ignores, and delete nothing), of a contact who did not click (a click
    # is also an open: the card would still count the contact as having opened).
    opens_before = harness.count("mailing_opens")
    harness.execute(
        "DELETE FROM spotler.mailing_opens WHERE contact_external_id IN "
        "(SELECT min(h.contact_external_id) FROM spotler.contact_mailing_history h "
        " JOIN spotler.mailing_opens o USING (contact_external_id, mailing_id) "
        " WHERE h.opened AND NOT h.clicked)"
    )
    recipients_before = harness.count("campaign_mailing_recipients")
    harness.execute(
        "DELETE FROM spotler.campaign_mailing_recipients WHERE contact_external_id IN "
        "(SELECT min(h.contact_external_id) FROM spotler.contact_campaign_mailing_history h "
        " JOIN spotler.campaign_mailing_recipients r "
        "   USING (contact_external_id, campaign_mailing_id, campaign_subscription_id) "
        " WHERE h.sent_day = ?)",
        [day],
    )
    assert harness.count("mailing_opens") < opens_before
    assert harness.count("campaign_mailing_recipients") < recipients_before
    mailing = harness.run_check("contact_mailing_history", "card_matches_interactions")
    campaign = harness.run_check("contact_campaign_mailing_history", "card_matches_interactions")
    assert not mailing.passed and not campaign.passed
    assert mailing.metadata["sample"].value[0]["disagreement"] == "opened/clicked/bounce differ"
    assert {r["disagreement"] for r in campaign.metadata["sample"].value} == {
        "only in the API history"
    }


def test_on_demand_contacts_including_e_mail_addresses(harness: FullHarness) -> None:
    day = harness.now.date()
    assert harness.materialize(HISTORIES, day=day).success
    tricky = harness.query(
        "SELECT contact_external_id FROM spotler.mailing_recipients "
        "WHERE contact_external_id LIKE '%+%@%' OR contact_external_id LIKE '%&%@%' "
        "ORDER BY 1 LIMIT 2"
    )
    ids = [r[0] for r in tricky]
    assert ids and all("@" in i for i in ids)
    others = "SELECT * FROM spotler.{} WHERE contact_external_id <> ALL (?::VARCHAR[]) ORDER BY ALL"
    before = {t: harness.query(others.format(t), [ids]) for t in HISTORIES}
    run_config = harness.contacts_run_config(ids)
    result = dg.materialize(
        harness.assets_for(HISTORIES),
        selection=[key(t) for t in HISTORIES],
        resources=harness.resources(),
        partition_key=day.isoformat(),
        run_config=run_config,
    )
    assert result.success
    with harness.client() as c:
        for contact in ids:
            api = list(c.iter_contact_mailing_history(contact))
            assert api
            assert harness.count(
                "contact_mailing_history", "contact_external_id = ?", [contact]
            ) == len(api)
    # the other contacts stored for the day are untouched
    assert {t: harness.query(others.format(t), [ids]) for t in HISTORIES} == before

    with pytest.raises(dg.Failure, match="one activity day"):
        dg.materialize(
            harness.assets_for(HISTORIES),
            selection=[key(t) for t in HISTORIES],
            resources=harness.resources(),
            tags={
                RANGE_START_TAG: (day - timedelta(days=1)).isoformat(),
                RANGE_END_TAG: day.isoformat(),
            },
            run_config=run_config,
        )


def test_the_card_views_cover_every_contact_without_api_calls(harness: FullHarness) -> None:
    cards = harness.query(
        "SELECT count(DISTINCT contact_external_id), count(*) FROM spotler.contact_mailing_card"
    )[0]
    assert cards[0] > 0 and cards[1] == harness.count("mailing_recipients")
    twice = harness.query(
        "SELECT contact_external_id, campaign_mailing_id, count(*) "
        "FROM spotler.contact_campaign_mailing_card "
        "GROUP BY ALL HAVING count(*) > 1 LIMIT 1"
    )
    assert twice  # a contact passing a campaign twice has two card rows for the step
    assert harness.count("contact_campaign_mailing_card") == harness.count(
        "campaign_mailing_recipients"
    )


def test_form_histories_reconcile_with_form_results(harness: FullHarness) -> None:
    # who submitted which form is known only to Spotler (and the simulator's ground truth)
    account = harness.sim.account
    start = harness.day_start(harness.now.date() - timedelta(days=LOADED_DAYS - 1)).timestamp()
    submitters = sorted(
        {
            account.contacts.external_ids(data.contact[k : k + 1])[0]
            for form in account.forms
            for data in [account.form_data(form)]
            for k in range(len(data.ts))
            if start <= data.ts[k] <= harness.now.timestamp()
        }
        - {None}  # a contact without an external id has no history to ask for
    )[:5]
    assert submitters
    result = dg.materialize(
        harness.assets_for(HISTORIES),
        selection=[key("contact_form_history")],
        resources=harness.resources(),
        partition_key=harness.now.date().isoformat(),
        run_config=harness.contacts_run_config(submitters),
    )
    assert result.success
    check = harness.run_check("contact_form_history", "submissions_match_form_results")
    assert check.passed, check.metadata["sample"].value
    assert check.metadata["checked"].value >= len(submitters)

    harness.execute(
        "UPDATE spotler.form_results SET completed = NOT completed WHERE form_result_id = "
        "(SELECT min(form_result_id) FROM spotler.contact_form_history)"
    )
    check = harness.run_check("contact_form_history", "submissions_match_form_results")
    assert not check.passed
    assert check.metadata["sample"].value[0]["disagreement"] == "submitted_at/completed differ"
