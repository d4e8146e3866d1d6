"""The simulator's HTTP contract: auth, shapes, paging, dates and errors (offline)."""

from __future__ import annotations

import time
from datetime import datetime

import httpx
import pytest
from oauthlib.oauth1 import Client

from spotler_pipeline.simulator import Simulator
from spotler_pipeline.simulator._time import ACCOUNT_TZ
from spotler_pipeline.simulator.testing import SignedSession, segment
from spotler_pipeline_tests.simulators import simulator_fixtures

NOW = datetime(2025, 3, 15, 12, 0, tzinfo=ACCOUNT_TZ)


shared, sim, api = simulator_fixtures(seed=5, scale=0.006, now=NOW, days=30)


def sent(sim: Simulator) -> list:
    """The account's mailings sent by the simulator's current time."""
    now = int(sim.now.timestamp())
    return [m for m in sim.account.mailings if m.sent(now)]


def sent_email(sim: Simulator, nth: int = -1):
    return [m for m in sent(sim) if m.type == "EMAIL"][nth]


def biggest(sim: Simulator):
    return max(sent(sim), key=lambda m: m.audience)


# -- authentication --------------------------------------------------------------------


def _signed(sim: Simulator, url: str, key=None, secret=None, timestamp=None):
    client = Client(
        key or sim.consumer_key, client_secret=secret or sim.consumer_secret, timestamp=timestamp
    )
    return client.sign(url, headers={"Accept": "application/json"})[:2]


@pytest.mark.parametrize(
    "tamper",
    ["wrong_secret", "wrong_key", "tampered_query", "stale_timestamp", "no_header", "replay"],
)
def test_bad_signatures_are_rejected(sim: Simulator, tamper: str) -> None:
    url = f"{sim.base_url}/form/list?formState=final"
    kwargs = {
        "wrong_secret": {"secret": "not-the-secret"},
        "wrong_key": {"key": "someone-else"},
        "stale_timestamp": {"timestamp": str(int(time.time()) - 3600)},
    }.get(tamper, {})
    signed, headers = _signed(sim, url, **kwargs)
    if tamper == "tampered_query":
        signed = signed.replace("formState=final", "formState=draft")
    if tamper == "no_header":
        headers = {"Accept": "application/json"}
    if tamper == "replay":
        assert httpx.get(signed, headers=headers).status_code == 200
    response = httpx.get(signed, headers=headers)
    assert response.status_code == 401
    assert response.json()["errorType"] == "NOT_AUTHORIZED"


def test_signature_covers_the_path_as_sent(sim: Simulator, api: SignedSession) -> None:
    mailing = sent_email(sim)
    openers = api.json(f"/mailing/{mailing.encrypted_id}/opens")["opens"]
    external_id = next(
        o["contactIdentifier"]["externalId"]
        for o in openers
        if "@" in o["contactIdentifier"].get("externalId", "")
    )
    encoded = f"{sim.base_url}/mailing/{mailing.encrypted_id}/opens/{segment(external_id)}"
    signed, headers = _signed(sim, encoded)
    assert httpx.get(signed, headers=headers).status_code == 200
    # Signed over one spelling of the path, sent with another: rejected like the real API.
    signed, headers = _signed(sim, encoded.replace("%40", "@"))
    assert "@" in signed
    assert httpx.get(signed.replace("@", "%40"), headers=headers).status_code == 401


# -- shapes (every model, field by field: test_contract.py) ------------------------------


def test_sms_mailings_have_no_subject_and_no_links(sim: Simulator, api: SignedSession) -> None:
    sms = next(m for m in sent(sim) if m.type == "SMS")
    detail = api.json(f"/mailing/{sms.encrypted_id}")
    assert "subject" not in detail["message"] and "links" not in detail  # absent, not null
    assert api.json(f"/mailing/{sms.encrypted_id}/opens")["opens"] == []


# -- paging ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"pageSize": "10001"},
        {"pageSize": "0"},
        {"pageSize": "-5"},
        {"pageSize": "1.5"},
        {"pageSize": "ten"},
        {"after": "-1"},
        {"after": "x"},
    ],
)
def test_bad_paging_parameters(sim: Simulator, api: SignedSession, params) -> None:
    response = api.get(f"/mailing/{sent_email(sim).encrypted_id}/recipients", params)
    assert response.status_code == 400
    assert response.json()["errorType"] == "INVALID_PARAMS"


def test_max_page_size_is_accepted(sim: Simulator, api: SignedSession) -> None:
    mailing = sent_email(sim)
    page = api.json(f"/mailing/{mailing.encrypted_id}/recipients", {"pageSize": 10000})
    assert len(page["recipients"]) == mailing.audience and "next" not in page["paging"]


def test_default_page_size_is_1000(api: SignedSession, sim: Simulator) -> None:
    big = biggest(sim)
    assert big.audience > 1000
    page = api.json(f"/mailing/{big.encrypted_id}/recipients")
    assert len(page["recipients"]) == 1000
    assert page["paging"]["after"] == 1000 and "after=1000" in page["paging"]["next"]


@pytest.mark.parametrize("extra", [0, 1, -1])
def test_next_is_absent_on_the_last_page(sim: Simulator, api: SignedSession, extra: int) -> None:
    mailing = sent_email(sim)
    total = mailing.audience
    size = total // 3 + (1 if extra > 0 else 0) if extra >= 0 else total // 3
    if extra == 0:  # exact multiple: the last page is full and has no next
        while total % size:
            size -= 1
    path = f"/mailing/{mailing.encrypted_id}/recipients"
    url: str | None = api.url(path, {"pageSize": size})
    pages = []
    while url:
        page = api.json(url)
        pages.append(page)
        url = page["paging"].get("next")
    rows = [r for p in pages for r in p["recipients"]]
    assert len(rows) == total
    assert len({r["contactIdentifier"]["encryptedId"] for r in rows}) == total
    assert pages[-1]["paging"]["after"] == total
    if extra == 0:
        assert len(pages[-1]["recipients"]) == size
    past_end = api.json(path, {"pageSize": size, "after": total})
    assert past_end["recipients"] == [] and "next" not in past_end["paging"]


def test_next_keeps_the_other_parameters(sim: Simulator, api: SignedSession) -> None:
    step = sim.account.campaigns[1].steps[0]
    params = {"fromDate": "2025-02-01T00:00:00", "toDate": "2025-03-01T00:00:00", "pageSize": 2}
    page = api.json(f"/campaign-mailing/{step.encrypted_id}/recipients", params)
    nxt = httpx.URL(page["paging"]["next"])
    assert nxt.params["fromDate"] == params["fromDate"] and nxt.params["pageSize"] == "2"
    assert nxt.params["after"] == "2"


# -- dates -------------------------------------------------------------------------------

BAD_DATES = [
    "2025-01-01",
    "2025-01-01T00:00",
    "2025-01-01 00:00:00",
    "2025-01-01T00:00:00Z",
    "2025-01-01T00:00:00+01:00",
    "2025-01-01T00:00:00.000",
    "2025-13-01T00:00:00",
    "01-01-2025T00:00:00",
]


@pytest.mark.parametrize("bad", BAD_DATES)
@pytest.mark.parametrize(
    ("path", "start", "end"),
    [
        ("/mailing", "fromDate", "toDate"),
        ("/campaign-mailing/{s}/opens", "fromDate", "toDate"),
        ("/form/result/2104", "startDate", "endDate"),
    ],
)
def test_malformed_dates_are_rejected(sim, api, bad: str, path: str, start: str, end: str) -> None:
    path = path.format(s=sim.account.campaigns[0].steps[0].encrypted_id)
    for params in (
        {start: bad, end: "2025-02-01T00:00:00"},
        {start: "2025-01-01T00:00:00", end: bad},
    ):
        response = api.get(path, params)
        assert response.status_code == 400, (params, response.text)
        assert response.json()["errorType"] == "INVALID_PARAMS"


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"fromDate": "2025-01-01T00:00:00"},
        {"fromDate": "2025-02-01T00:00:00", "toDate": "2025-01-01T00:00:00"},
    ],
)
def test_mailing_list_needs_an_ordered_range(api: SignedSession, params) -> None:
    assert api.get("/mailing", params).status_code == 400


def test_mailing_list_range_is_inclusive_at_both_ends(sim: Simulator, api: SignedSession) -> None:
    mailing = sent_email(sim, 0)
    stamp = mailing.listing(int(sim.now.timestamp()))["scheduledStartDate"]
    listed = api.json("/mailing", {"fromDate": stamp, "toDate": stamp})
    assert mailing.encrypted_id in {m["encryptedId"] for m in listed}
    assert {m["scheduledStartDate"] for m in listed} == {stamp}


def test_mailing_list_only_shows_sent_mailings(sim: Simulator, api: SignedSession) -> None:
    listed = api.json(
        "/mailing", {"fromDate": "2000-01-01T00:00:00", "toDate": "2100-01-01T00:00:00"}
    )
    assert [m["encryptedId"] for m in listed] == [m.encrypted_id for m in sent(sim)]
    assert len(sent(sim)) < len(sim.account.mailings)  # some are scheduled after now


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "error_type"),
    [
        ("/mailing/doesNotExist", 404, "MAILING_NOTFOUND"),
        ("/mailing/doesNotExist/opens", 404, "MAILING_NOTFOUND"),
        ("/contact/nobody%40example.nl/mailings", 404, "CONTACT_NOT_FOUND"),
        ("/contact/jan.jansen99999999%40gmail.com/forms", 404, "CONTACT_NOT_FOUND"),
        ("/campaign/nope/mailing", 404, "CAMPAIGN_NOTFOUND"),
        ("/campaign-mailing/nope/recipients", 404, "CAMPAIGN_NOTFOUND"),
        ("/form/result/999", 404, "FORM_NOT_FOUND"),
        ("/form/result/2104/1", 404, "FORMRESULT_NOT_FOUND"),
        ("/form/list?formSubType=other", 400, "INVALID_PARAMS"),
        ("/form/result/2104?completed=yes", 400, "INVALID_PARAMS"),
        ("/nothing/here", 404, "RESOURCE_NOT_FOUND"),
        ("/mailing/", 404, "RESOURCE_NOT_FOUND"),
    ],
)
def test_errors(api: SignedSession, path: str, status: int, error_type: str) -> None:
    response = api.get(path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json()["errorType"] == error_type and response.json()["message"]


def test_unknown_prefix_and_methods(sim: Simulator, api: SignedSession) -> None:
    root = sim.base_url.removesuffix("/integrationservice-1.1.0")
    assert httpx.get(root + "/integrationservice-9/mailing").status_code == 404
    signed, headers = api.sign(sim.base_url + "/campaign/list")
    assert httpx.post(signed, headers=headers).status_code == 405
    assert httpx.delete(signed, headers=headers).status_code == 405


def test_contact_ids_arrive_percent_encoded(sim: Simulator, api: SignedSession) -> None:
    """Some external ids need encoding (+, &, ', non-ASCII); each round-trips."""
    mailing = biggest(sim)
    rows = api.all_pages(
        f"/mailing/{mailing.encrypted_id}/recipients", "recipients", {"pageSize": 10000}
    )
    ids = [r["contactIdentifier"].get("externalId", "") for r in rows]
    awkward = [i for i in ids if any(c in i for c in "+&'") or not i.isascii()]
    assert len(awkward) > 10
    for external_id in awkward[:10]:
        history = api.all_pages(f"/contact/{segment(external_id)}/mailings", "mailingHistories")
        assert mailing.encrypted_id in {h["mailing"]["encryptedId"] for h in history}
