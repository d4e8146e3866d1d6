"""Deletions upstream: a mailing, campaign step or form that Spotler forgets.

Deleted, an item leaves its listing and every endpoint about it answers 404 with the
documented errorType; deleted with ``keep_listed`` it is still listed (deleted between a
listing and the fetch) while everything else about it answers 404.
"""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

from spotler_pipeline.simulator import Simulator
from spotler_pipeline.simulator._time import ACCOUNT_TZ
from spotler_pipeline.simulator.testing import SignedSession, segment
from spotler_pipeline_tests.simulators import simulator_fixtures

NOW = datetime(2025, 11, 12, 14, 0, tzinfo=ACCOUNT_TZ)
WINDOW = {"fromDate": "2025-10-01T00:00:00", "toDate": "2025-11-30T00:00:00"}


# a simulator per test: the tests delete items from its account
shared, sim, api = simulator_fixtures("function", seed=12, scale=0.003, now=NOW, days=12)


def external_id(row: dict) -> str:
    return row["contactIdentifier"]["externalId"]


def assert_404(api: SignedSession, path: str, error_type: str) -> None:
    response = api.get(path)
    assert response.status_code == 404, (path, response.text)
    assert response.json()["errorType"] == error_type, path


def a_mailing(api: SignedSession) -> tuple[str, str]:
    """An e-mail mailing with opens and clicks, and one of its clickers."""
    for listed in reversed(api.json("/mailing", WINDOW)):
        clicks = api.json(f"/mailing/{listed['encryptedId']}/clicks")["clicks"]
        if clicks:
            return listed["encryptedId"], external_id(clicks[0])
    raise AssertionError("no mailing with clicks")


def mailing_paths(mid: str, contact: str) -> list[str]:
    return [
        f"/mailing/{mid}",
        f"/mailing/{mid}/statistics",
        *(f"/mailing/{mid}/{kind}" for kind in ("recipients", "opens", "clicks", "bounces")),
        f"/mailing/{mid}/opens/{segment(contact)}",
        f"/mailing/{mid}/clicks/{segment(contact)}",
    ]


def history_ids(api: SignedSession, contact: str, kind: str, array: str, key: str) -> set:
    rows = api.all_pages(f"/contact/{segment(contact)}/{kind}", array)
    return {r[key]["encryptedId"] if key != "form" else r[key]["id"] for r in rows}


@pytest.mark.parametrize("keep_listed", [False, True], ids=["deleted", "deleted_after_listing"])
def test_a_deleted_mailing(sim: Simulator, api: SignedSession, keep_listed: bool) -> None:
    mid, contact = a_mailing(api)
    listing = api.json("/mailing", WINDOW)
    others = [m for m in listing if m["encryptedId"] != mid]
    other_opens = {
        m["encryptedId"]: api.get(f"/mailing/{m['encryptedId']}/opens").content for m in others[-3:]
    }
    assert mid in history_ids(api, contact, "mailings", "mailingHistories", "mailing")
    served = sim.summary()["tables"]

    sim.delete_mailing(mid, keep_listed=keep_listed)

    after = api.json("/mailing", WINDOW)
    assert after == (listing if keep_listed else others)
    for path in mailing_paths(mid, contact):
        assert_404(api, path, "MAILING_NOTFOUND")
    assert mid not in history_ids(api, contact, "mailings", "mailingHistories", "mailing")
    for other, opens in other_opens.items():  # nothing else changed
        assert api.get(f"/mailing/{other}/opens").content == opens
    assert sim.summary()["tables"]["mailings"] == served["mailings"] - 1


@pytest.mark.parametrize("keep_listed", [False, True], ids=["deleted", "deleted_after_listing"])
def test_a_deleted_campaign_step(sim: Simulator, api: SignedSession, keep_listed: bool) -> None:
    campaign = next(c for c in sim.account.campaigns if c.repeaters)
    listing = api.json(f"/campaign/{campaign.encrypted_id}/mailing")
    step, kept = listing[0]["encryptedId"], listing[1]["encryptedId"]
    path = f"/campaign-mailing/{step}"
    opens = api.all_pages(path + "/opens", "opens")
    assert opens
    sub, contact = opens[0]["campaignSubscriptionId"], external_id(opens[0])
    history = ("campaign-mailings", "campaignMailingHistories", "campaignMailing")
    assert step in history_ids(api, contact, *history)
    kept_rows = api.all_pages(f"/campaign-mailing/{kept}/recipients", "recipients")

    sim.delete_campaign_mailing(step, keep_listed=keep_listed)

    after = api.json(f"/campaign/{campaign.encrypted_id}/mailing")
    assert after == (listing if keep_listed else listing[1:])
    for p in (
        path,
        *(f"{path}/{kind}" for kind in ("recipients", "opens", "clicks", "bounces")),
        f"{path}/opens/{sub}",
        f"{path}/clicks/{sub}",
    ):
        assert_404(api, p, "CAMPAIGN_NOTFOUND")
    assert step not in history_ids(api, contact, *history)
    assert api.all_pages(f"/campaign-mailing/{kept}/recipients", "recipients") == kept_rows
    assert api.json("/campaign/list") == [c.listing() for c in sim.account.campaigns]


def test_deleting_a_step_before_its_data_exists_leaves_the_other_steps_alone() -> None:
    with (
        Simulator(seed=12, scale=0.003, now=NOW, days=12) as plain,
        Simulator(seed=12, scale=0.003, now=NOW, days=12) as pruned,
        plain.session() as plain_api,
        pruned.session() as pruned_api,
    ):
        steps = [s.encrypted_id for s in plain.account.campaigns[0].steps]
        pruned.delete_campaign_mailing(steps[1])  # before anything was generated
        for step in (steps[0], steps[2]):
            path = f"/campaign-mailing/{step}/opens"
            assert pruned_api.all_pages(path, "opens") == plain_api.all_pages(path, "opens")


@pytest.mark.parametrize("keep_listed", [False, True], ids=["deleted", "deleted_after_listing"])
def test_a_deleted_form(sim: Simulator, api: SignedSession, keep_listed: bool) -> None:
    forms = api.json("/form/list")
    results = api.json("/form/result/2104")
    assert results
    result_id = results[-1]["formResultId"]
    form = sim.account.forms_by_id[2104]
    data = sim.account.form_data(form)
    k = data.index_of(form, result_id)
    contact = sim.account.contacts.external_ids(data.contact[k : k + 1])[0]
    assert 2104 in history_ids(api, contact, "forms", "formHistories", "form")

    sim.delete_form(2104, keep_listed=keep_listed)

    after = api.json("/form/list")
    assert after == (forms if keep_listed else [f for f in forms if f["id"] != 2104])
    assert_404(api, "/form/result/2104", "FORM_NOT_FOUND")
    assert_404(api, f"/form/result/2104/{result_id}", "FORM_NOT_FOUND")
    assert_404(api, "/form/result/2104?completed=true", "FORM_NOT_FOUND")
    assert 2104 not in history_ids(api, contact, "forms", "formHistories", "form")
    assert api.json("/form/result/2101")  # the others are still there


def test_admin_endpoint_deletes(sim: Simulator, api: SignedSession) -> None:
    url = sim.admin_url + "/delete"
    mid, contact = a_mailing(api)
    step = sim.account.campaigns[0].steps[0].encrypted_id
    response = httpx.post(url, json={"kind": "mailing", "id": mid})
    assert response.status_code == 200
    assert response.json() == {"kind": "mailing", "id": mid, "keep_listed": False}
    assert mid not in {m["encryptedId"] for m in api.json("/mailing", WINDOW)}
    assert_404(api, f"/mailing/{mid}/opens", "MAILING_NOTFOUND")

    body = {"kind": "campaign_mailing", "id": step, "keep_listed": True}
    assert httpx.post(url, json=body).status_code == 200
    assert step in {s.encrypted_id for s in sim.account.campaigns[0].steps}
    assert_404(api, f"/campaign-mailing/{step}", "CAMPAIGN_NOTFOUND")

    assert httpx.post(url, json={"kind": "form", "id": 2101}).status_code == 200
    assert 2101 not in {f["id"] for f in api.json("/form/list")}
    assert_404(api, "/form/result/2101", "FORM_NOT_FOUND")

    for body, status, error_type in [
        ({"kind": "mailing", "id": mid}, 404, "MAILING_NOTFOUND"),  # already gone
        ({"kind": "mailing", "id": "nope"}, 404, "MAILING_NOTFOUND"),
        ({"kind": "campaign_mailing", "id": "nope"}, 404, "CAMPAIGN_NOTFOUND"),
        ({"kind": "form", "id": "999"}, 404, "FORM_NOT_FOUND"),
        ({"kind": "form", "id": "x"}, 404, "FORM_NOT_FOUND"),
        ({"kind": "campaign", "id": "x"}, 400, "INVALID_PARAMS"),
        ({"kind": "mailing"}, 400, "INVALID_PARAMS"),
        ({"kind": "form", "id": 2102, "keep_listed": "yes"}, 400, "INVALID_PARAMS"),
    ]:
        response = httpx.post(url, json=body)
        assert response.status_code == status, body
        assert response.json()["errorType"] == error_type, body


def test_a_listed_item_deleted_later_can_then_leave_its_listing(sim: Simulator) -> None:
    form = sim.account.forms[-1]
    sim.delete_form(form.id, keep_listed=True)
    assert form in sim.account.forms
    sim.delete_form(form.id)
    assert form not in sim.account.forms
    with pytest.raises(KeyError):
        sim.delete_form(form.id)
    with pytest.raises(KeyError):
        sim.delete_mailing("nope")
    with pytest.raises(KeyError):
        sim.delete_campaign_mailing("nope")
