"""Every endpoint through the client against the simulator, with paging and faults.

The simulator's own signed session (oauthlib directly, independent of the client) reads the
raw JSON as the reference.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spotler_pipeline.client import (
    SpotlerAuthError,
    SpotlerClient,
    SpotlerNotFoundError,
    SpotlerResponseError,
    SpotlerUnavailableError,
)
from spotler_pipeline.simulator import Fault, Simulator
from spotler_pipeline.simulator.testing import SignedSession, segment
from spotler_pipeline_tests.simulators import simulator_client
from spotler_pipeline_tests.test_client_support import rows_of

SECRET_MARK = "simulator-secret"


def make_client(sim: Simulator, **overrides: object) -> SpotlerClient:
    return simulator_client(sim, backoff_initial=0.01, backoff_max=0.05, **overrides)


@pytest.fixture
def client(simulator: Simulator) -> Iterator[SpotlerClient]:
    with make_client(simulator) as c:
        yield c


@pytest.fixture
def raw(simulator: Simulator) -> Iterator[SignedSession]:
    with simulator.session() as s:
        yield s


def window(sim: Simulator) -> tuple:
    return sim.now - timedelta(days=20), sim.now


def biggest_email(client: SpotlerClient, sim: Simulator):
    mailings = [m for m in client.list_mailings(*window(sim)) if m.type == "EMAIL"]
    return max(mailings, key=lambda m: m.sent_count or 0)


def test_mailing_endpoints_match_the_raw_api(
    client: SpotlerClient, raw: SignedSession, simulator: Simulator
) -> None:
    start, end = window(simulator)
    fmt = "%Y-%m-%dT%H:%M:%S"
    listed = raw.json("/mailing", {"fromDate": start.strftime(fmt), "toDate": end.strftime(fmt)})
    mailings = client.list_mailings(start, end)
    assert [m.encrypted_id for m in mailings] == [m["encryptedId"] for m in listed]
    assert all(m.scheduled_start_date and m.scheduled_start_date.tzinfo for m in mailings)

    m = biggest_email(client, simulator)
    mid = segment(m.encrypted_id)
    details = client.get_mailing(m.encrypted_id)
    assert [str(link["id"]) for link in raw.json(f"/mailing/{mid}")["links"]] == [
        link.id for link in details.links
    ]
    assert details.message is not None and details.message.subject
    stats = client.get_mailing_statistics(m.encrypted_id)
    assert stats.sent_count == raw.json(f"/mailing/{mid}/statistics")["sentCount"] == m.sent_count

    for kind, batches in [
        ("recipients", client.mailing_recipient_batches),
        ("opens", client.mailing_open_batches),
        ("clicks", client.mailing_click_batches),
        ("bounces", client.mailing_bounce_batches),
    ]:
        expected = raw.all_pages(f"/mailing/{mid}/{kind}", kind, {"pageSize": 10000})
        assert sum(b.num_rows for b in batches(m.encrypted_id)) == len(expected), kind

    # one contact's opens and clicks (6, 8), by an external id that needs percent-encoding
    opener = rows_of(client.mailing_open_batches(m.encrypted_id))[0]["contact_external_id"]
    assert opener
    mine = list(client.iter_mailing_contact_opens(m.encrypted_id, opener))
    assert mine and all(o.contact.external_id == opener for o in mine)
    list(client.iter_mailing_contact_clicks(m.encrypted_id, opener))


def test_contact_history_by_email_shaped_id(client: SpotlerClient, simulator: Simulator) -> None:
    m = biggest_email(client, simulator)
    recipients = rows_of(client.mailing_recipient_batches(m.encrypted_id))
    contacts = [r["contact_external_id"] for r in recipients]
    tricky = next(c for c in contacts if c and ("+" in c or "&" in c or "'" in c))
    assert "@" in tricky
    history = list(client.iter_contact_mailing_history(tricky))
    assert m.encrypted_id in {h.mailing.encrypted_id for h in history if h.mailing}
    list(client.iter_contact_campaign_mailing_history(tricky))
    list(client.iter_contact_form_history(tricky))
    with pytest.raises(SpotlerNotFoundError) as err:
        list(client.iter_contact_mailing_history("nobody+x@example.invalid"))
    assert err.value.error_type == "CONTACT_NOT_FOUND"


def test_campaign_and_form_endpoints(client: SpotlerClient, simulator: Simulator) -> None:
    start, end = window(simulator)
    campaigns = client.list_campaigns()
    assert campaigns and any(c.triggers for c in campaigns)
    steps = [s for c in campaigns for s in client.list_campaign_mailings(c.encrypted_id)]
    assert steps
    totals = {"recipients": 0, "opens": 0, "clicks": 0, "bounces": 0}
    for step in steps:
        details = client.get_campaign_mailing(step.encrypted_id)
        assert details.encrypted_id == step.encrypted_id
        sid = step.encrypted_id
        recipients = rows_of(client.campaign_mailing_recipient_batches(sid, start, end))
        totals["recipients"] += len(recipients)
        opens = rows_of(client.campaign_mailing_open_batches(sid, start, end))
        totals["opens"] += len(opens)
        totals["clicks"] += len(rows_of(client.campaign_mailing_click_batches(sid, start, end)))
        totals["bounces"] += len(rows_of(client.campaign_mailing_bounce_batches(sid, start, end)))
        if opens:
            sub = opens[0]["campaign_subscription_id"]
            assert sub is not None
            assert list(client.iter_campaign_mailing_subscription_opens(step.encrypted_id, sub))
            list(client.iter_campaign_mailing_subscription_clicks(step.encrypted_id, sub))
    assert totals["recipients"] > 0 and totals["opens"] > 0

    forms = client.list_forms()
    assert {f.form_sub_type for f in forms} == {"normal", "subscribe", "unSubscribe", "editProfile"}
    assert {f.id for f in forms} == {str(f.id) for f in simulator.account.live_forms()}
    results = [r for f in forms for r in client.list_form_results(f.id, start, end)]
    assert results
    # arrays of strings, as the contract has them: one value, several, or none
    assert all(isinstance(a.answer, list) for r in results for a in r.answers)
    assert {min(len(a.answer), 2) for r in results for a in r.answers} == {0, 1, 2}
    form = next(f for f in forms if client.list_form_results(f.id, start, end))
    first = client.list_form_results(form.id, start, end)[0]
    assert client.get_form_result(form.id, first.form_result_id).answers == first.answers


def exact_multiple(n: int) -> int:
    return next(d for d in range(max(2, n // 20), n) if n % d == 0 and n // d >= 2)


def test_paging_edge_cases(simulator: Simulator) -> None:
    with make_client(simulator) as c:
        m = biggest_email(c, simulator)
        n = m.sent_count
        sms = next(x for x in c.list_mailings(*window(simulator)) if x.type == "SMS")
        assert rows_of(c.mailing_click_batches(sms.encrypted_id)) == []  # empty result
    for page_size in (10000, n, n + 1, n - 1, exact_multiple(n)):
        simulator.reset_log()
        with make_client(simulator, page_size=page_size) as c:
            batches = list(c.mailing_recipient_batches(m.encrypted_id))
            assert sum(b.num_rows for b in batches) == n, page_size
            pages = -(-n // page_size)
            # an exact multiple may cost one extra (empty) request, never more
            assert c.request_count in (pages, pages + 1), page_size
        assert all(
            f"pageSize={page_size}" in q for _, p, q, _ in simulator.requests if "/recipients" in p
        )


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(page_size=st.integers(min_value=50, max_value=10000))
def test_paging_any_page_size_returns_every_row_once(simulator: Simulator, page_size: int) -> None:
    with make_client(simulator, page_size=page_size) as c:
        m = biggest_email(c, simulator)
        ids = [
            r["contact_encrypted_id"] for r in rows_of(c.mailing_recipient_batches(m.encrypted_id))
        ]
    assert len(ids) == len(set(ids)) == m.sent_count


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("rate_limit", {"retry_after": 0}),
        ("server_error", {"status": 500}),
        ("server_error", {"status": 503}),
        ("slow", {"seconds": 1.5}),
        ("drop_connection", {}),
        ("truncated_body", {}),
        ("not_json", {}),
        ("repeat_page", {}),
    ],
)
def test_transient_fault_is_retried_and_data_is_complete(
    simulator: Simulator, kind: str, params: dict
) -> None:
    with make_client(simulator, page_size=500, timeout=1.0) as c:
        m = biggest_email(c, simulator)
        expected = len(rows_of(c.mailing_recipient_batches(m.encrypted_id)))
        before = c.request_count
        simulator.inject(Fault(kind, path_pattern="/recipients", times=1, **params))
        got = sum(b.num_rows for b in c.mailing_recipient_batches(m.encrypted_id))
        assert got == expected
        assert c.request_count - before > -(-expected // 500)  # at least one retry


@pytest.mark.parametrize(
    ("kind", "error"),
    [("server_error", SpotlerUnavailableError), ("not_json", SpotlerResponseError)],
)
def test_persistent_fault_fails_clearly(simulator: Simulator, kind: str, error: type) -> None:
    with make_client(simulator, max_attempts=3) as c:
        m = biggest_email(c, simulator)
        simulator.inject(Fault(kind, path_pattern="/opens", times=None))
        with pytest.raises(error) as err:
            list(c.mailing_open_batches(m.encrypted_id))
    text = str(err.value)
    assert "/opens" in text and SECRET_MARK not in text


def test_wrong_credentials_fail_at_once(simulator: Simulator) -> None:
    with make_client(simulator, consumer_secret="wrong-secret-123") as c:
        with pytest.raises(SpotlerAuthError) as err:
            c.list_campaigns()
        assert c.request_count == 1
    text = str(err.value)
    assert "SPOTLER_CONSUMER_KEY" in text and "SPOTLER_CONSUMER_SECRET" in text
    assert "wrong-secret-123" not in text and "wrong-secret-123" not in repr(c)
