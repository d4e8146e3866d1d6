"""The generated account: clock-driven visibility, internal agreement, determinism."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from spotler_pipeline.simulator import Simulator
from spotler_pipeline.simulator._time import ACCOUNT_TZ, format_many, parse_api_date
from spotler_pipeline.simulator.testing import SignedSession, segment
from spotler_pipeline_tests.simulators import simulator_fixtures

NOW = datetime(2025, 10, 20, 9, 30, tzinfo=ACCOUNT_TZ)


shared, sim, api = simulator_fixtures(seed=7, scale=0.003, now=NOW, days=20)


def sent_emails(sim: Simulator) -> list:
    now = int(sim.now.timestamp())
    return [m for m in sim.account.mailings if m.sent(now) and m.type == "EMAIL"]


def contact_key(row: dict) -> str:
    """The contact of an interaction row: its external id, or (a contact without one) its
    encrypted id."""
    ids = row["contactIdentifier"]
    return ids.get("externalId") or ids["encryptedId"]


def test_clock_reveals_late_opens_new_mailings_and_matures_statistics() -> None:
    with Simulator(seed=3, scale=0.003, now=NOW, days=10) as sim, sim.session() as api:
        mailing = sent_emails(sim)[-1]
        path = f"/mailing/{mailing.encrypted_id}"
        window = {"fromDate": "2025-10-01T00:00:00", "toDate": "2025-11-30T00:00:00"}
        before_list = api.json("/mailing", window)
        before_stats = api.json(path + "/statistics")
        before_opens = api.all_pages(path + "/opens", "opens")
        sim.advance(timedelta(days=5))
        after_stats = api.json(path + "/statistics")
        after_opens = api.all_pages(path + "/opens", "opens")
        assert len(api.json("/mailing", window)) > len(before_list)
    assert len(after_opens) > len(before_opens)
    assert after_opens[: len(before_opens)] == before_opens  # new rows only append
    assert after_stats["openCount"] > before_stats["openCount"]
    assert after_stats["sentCount"] == before_stats["sentCount"] == mailing.audience
    for key, value in before_stats.items():  # late bounces lower acceptedCount; all else grows
        assert after_stats[key] >= value or key == "acceptedCount", key
    assert all(
        o["openDate"] <= (NOW + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%S")
        for o in after_opens
    )


def test_statistics_mature_over_a_month_and_agree_with_interactions_meanwhile() -> None:
    with Simulator(seed=8, scale=0.01, now=NOW, days=45) as sim, sim.session() as api:
        now = int(sim.now.timestamp())
        old = [m for m in sent_emails(sim) if m.send_ts <= now - 31 * 86_400]
        mailing = max(old, key=lambda m: m.audience)
        path = f"/mailing/{mailing.encrypted_id}"
        sent = datetime.fromtimestamp(mailing.send_ts, tz=ACCOUNT_TZ)
        opens, clicks = {}, {}
        for days in (1, 2, 7, 30):
            sim.set_now(sent + timedelta(days=days))
            stats = api.json(path + "/statistics")
            page = {"pageSize": 10000}
            openers = {contact_key(o) for o in api.all_pages(path + "/opens", "opens", page)}
            clickers = {contact_key(c) for c in api.all_pages(path + "/clicks", "clicks", page)}
            recipients = api.all_pages(path + "/recipients", "recipients", page)
            assert stats["sentCount"] == len(recipients) == mailing.audience
            assert stats["openCount"] == len(openers) and stats["clickCount"] == len(clickers)
            assert clickers <= openers
            opens[days], clicks[days] = stats["openCount"], stats["clickCount"]
    assert mailing.audience > 1000
    assert opens[1] < opens[2] <= opens[30]
    assert 0.6 * opens[30] <= opens[2] < 0.98 * opens[30]  # most in two days, then a real tail
    assert opens[7] < 0.97 * opens[30]  # ... that still brings openers after a week
    assert clicks[1] <= clicks[2] <= clicks[30] and clicks[30] > 0


def test_admin_clock_moves_the_same_clock(sim: Simulator) -> None:
    import httpx

    original = sim.now
    try:
        target = "2025-10-21T08:00:00+02:00"
        response = httpx.post(sim.admin_url + "/clock", json={"now": target})
        assert response.json()["now"] == target
        assert sim.now == datetime.fromisoformat(target)
        assert httpx.get(sim.admin_url + "/clock").json()["now"] == target
    finally:
        sim.set_now(original)


def test_statistics_agree_with_interactions(sim: Simulator, api: SignedSession) -> None:
    settled = int(sim.now.timestamp()) - 2 * 86_400  # two days after the send: most opens in
    repeat_opens = 0
    for mailing in [m for m in sent_emails(sim) if m.send_ts <= settled][-4:]:
        path = f"/mailing/{mailing.encrypted_id}"
        stats = api.json(path + "/statistics")
        recipients = api.all_pages(path + "/recipients", "recipients")
        opens = api.all_pages(path + "/opens", "opens")
        clicks = api.all_pages(path + "/clicks", "clicks")
        bounces = api.all_pages(path + "/bounces", "bounces")
        types = Counter(b["type"] for b in bounces)
        assert stats["sentCount"] == len(recipients) == mailing.audience
        assert stats["openCount"] == len({contact_key(o) for o in opens})
        assert stats["clickCount"] == len({contact_key(c) for c in clicks})
        assert stats["hardbounceCount"] == types["HARDBOUNCE"]
        assert stats["softbounceCount"] == types["SOFTBOUNCE"]
        assert stats["openRenderedCount"] <= stats["openCount"]
        assert {c["linkId"] for c in clicks} <= {link["id"] for link in mailing.links}
        assert {contact_key(c) for c in clicks} <= {contact_key(o) for o in opens}
        assert {contact_key(o) for o in opens} <= {contact_key(r) for r in recipients}
        assert not {contact_key(o) for o in opens} & {contact_key(b) for b in bounces}
        repeat_opens += len(opens) - len({contact_key(o) for o in opens})
        rate = stats["openCount"] / stats["sentCount"]
        assert 0.1 < rate < 0.5
    assert repeat_opens > 0  # some open several times


def test_contact_mailing_history_agrees_with_interactions(
    sim: Simulator, api: SignedSession
) -> None:
    mailing = sent_emails(sim)[-2]
    path = f"/mailing/{mailing.encrypted_id}"
    opens = {contact_key(o) for o in api.all_pages(path + "/opens", "opens")}
    clicks = {contact_key(c) for c in api.all_pages(path + "/clicks", "clicks")}
    bounces = {contact_key(b): b["type"] for b in api.all_pages(path + "/bounces", "bounces")}
    recipients = [contact_key(r) for r in api.all_pages(path + "/recipients", "recipients")]
    chosen = [*list(clicks)[:2], *list(opens - clicks)[:2], *list(bounces)[:2], *recipients[:2]]
    for external_id in [c for c in chosen if sim.account.contacts.lookup(c) is not None]:
        history = api.all_pages(f"/contact/{segment(external_id)}/mailings", "mailingHistories")
        entry = next(h for h in history if h["mailing"]["encryptedId"] == mailing.encrypted_id)
        assert entry["opened"] == (external_id in opens)
        assert entry["clicked"] == (external_id in clicks)
        assert entry.get("bounce") == bounces.get(external_id)
        assert entry["sentDate"] == entry["mailing"]["scheduledStartDate"]
        # Every mailing in the history really reached the contact, and one-contact endpoints agree.
        for h in history:
            mid = h["mailing"]["encryptedId"]
            own_opens = api.json(f"/mailing/{mid}/opens/{segment(external_id)}")["opens"]
            own_clicks = api.json(f"/mailing/{mid}/clicks/{segment(external_id)}")["clicks"]
            assert bool(own_opens) == h["opened"] and bool(own_clicks) == h["clicked"]
            # MailingContactOpen / -Click: the contact is the one in the path, not in the rows
            assert all(set(o) == {"openDate"} for o in own_opens)
            assert all(set(c) == {"clickDate", "linkId"} for c in own_clicks)
        index = sim.account.contacts.lookup(external_id)
        expected = [
            m.encrypted_id
            for m in sim.account.mailings
            if m.sent(int(sim.now.timestamp()))
            and sim.account.mailing_data(m).position(index) is not None
        ]
        assert [h["mailing"]["encryptedId"] for h in history] == expected


def test_campaign_history_agrees_with_campaign_interactions(
    sim: Simulator, api: SignedSession
) -> None:
    campaign = next(c for c in sim.account.campaigns if c.repeaters)
    step = campaign.steps[0]
    path = f"/campaign-mailing/{step.encrypted_id}"
    recipients = api.all_pages(path + "/recipients", "recipients")
    passes = Counter(r["contactIdentifier"].get("externalId") for r in recipients)
    passes.pop(None, None)  # contacts without an external id have no history to ask for
    repeat, count = passes.most_common(1)[0]
    assert count > 1  # a contact passes the campaign more than once
    history = api.all_pages(
        f"/contact/{segment(repeat)}/campaign-mailings", "campaignMailingHistories"
    )
    mine = [h for h in history if h["campaignMailing"]["encryptedId"] == step.encrypted_id]
    assert len(mine) == count
    assert len({h["campaignSubscriptionId"] for h in mine}) == count
    for h in mine:
        sub = h["campaignSubscriptionId"]
        opens = api.json(f"{path}/opens/{sub}")["opens"]
        clicks = api.json(f"{path}/clicks/{sub}")["clicks"]
        assert bool(opens) == h["opened"] and bool(clicks) == h["clicked"]
        assert all(set(o) == {"openDate"} for o in opens)  # the subscription is the one asked


def test_campaign_date_filters_are_inclusive(sim: Simulator, api: SignedSession) -> None:
    step = sim.account.campaigns[0].steps[0]
    path = f"/campaign-mailing/{step.encrypted_id}/recipients"
    everything = api.all_pages(path, "recipients", {"pageSize": 10000})
    stamp = everything[len(everything) // 2]["sendDate"]
    window = api.all_pages(path, "recipients", {"fromDate": stamp, "toDate": stamp})
    assert window and all(r["sendDate"] == stamp for r in window)
    start, end = "2025-10-10T00:00:00", "2025-10-12T00:00:00"
    window = api.all_pages(path, "recipients", {"fromDate": start, "toDate": end})
    assert window == [r for r in everything if start <= r["sendDate"] <= end]


def test_form_results_and_history(sim: Simulator, api: SignedSession) -> None:
    forms = api.json("/form/list")
    assert {f["formSubType"] for f in forms} == {
        "normal",
        "subscribe",
        "unSubscribe",
        "editProfile",
    }
    assert {f["formState"] for f in forms} == {"draft", "proof", "final"}
    assert api.json("/form/list", {"formState": "draft"}) == [
        f for f in forms if f["formState"] == "draft"
    ]
    results = [r for f in forms for r in api.json(f"/form/result/{f['id']}")]
    answers = [a["answer"] for r in results for a in r.get("answers", [])]
    # arrays of strings: one value, several (multiple choice), none (unanswered)
    assert all(isinstance(a, list) and all(isinstance(v, str) for v in a) for a in answers)
    assert {min(len(a), 2) for a in answers} == {0, 1, 2}
    assert {r["completed"] for r in results} == {True, False}
    assert any(r["testResult"] for r in results) and not all(r["testResult"] for r in results)
    completed = api.json("/form/result/2104", {"completed": "false"})
    assert completed and not any(r["completed"] for r in completed)
    window = {"startDate": "20251010", "endDate": "20251015000000"}  # DateParam
    ranged = api.json("/form/result/2101", window)
    assert ranged and all(
        "2025-10-10T00:00:00" <= r["submittedAt"] <= "2025-10-15T00:00:00" for r in ranged
    )
    # A submitter's form history lists the submission with the same facts.
    form = sim.account.forms_by_id[2101]
    data = sim.account.form_data(form)
    k = next(
        k
        for k in np.flatnonzero(data.ts <= int(sim.now.timestamp()))[::-1].tolist()
        if sim.account.contacts.external_ids(data.contact[k : k + 1])[0]
    )
    external_id = sim.account.contacts.external_ids(data.contact[k : k + 1])[0]
    history = api.all_pages(f"/contact/{segment(external_id)}/forms", "formHistories")
    entry = next(h for h in history if h["formResultId"] == int(data.result_ids[k]))
    single = api.json(f"/form/result/2101/{entry['formResultId']}")
    assert (
        entry["submitDate"] == single["submittedAt"] and entry["completed"] == single["completed"]
    )
    assert entry["form"] == next(f for f in forms if f["id"] == 2101)


def test_same_seed_same_account_other_seed_other_account() -> None:
    def fingerprint(seed: int) -> tuple:
        with Simulator(seed=seed, scale=0.002, now=NOW, days=10) as sim, sim.session() as api:
            mailing = sent_emails(sim)[-1]
            return (
                sim.summary(),
                api.get(f"/mailing/{mailing.encrypted_id}/opens").content,
                api.get("/campaign/list").content,
                api.get("/form/result/2104").content,
            )

    assert fingerprint(1) == fingerprint(1)
    assert fingerprint(1)[1:] != fingerprint(2)[1:]


def served_days(sim: Simulator, api: SignedSession, first: str, last: str) -> dict:
    """Everything served about the send days first..last (and campaign/form events then)."""
    window = {"fromDate": f"{first}T00:00:00", "toDate": f"{last}T23:59:59"}
    listing = api.json("/mailing", window)
    mailings = {}
    for m in listing:
        path = f"/mailing/{m['encryptedId']}"
        mailings[m["encryptedId"]] = (
            api.json(path),
            api.json(path + "/statistics"),
            api.all_pages(path + "/recipients", "recipients", {"pageSize": 10000}),
            api.all_pages(path + "/opens", "opens", {"pageSize": 10000}),
            api.all_pages(path + "/clicks", "clicks", {"pageSize": 10000}),
            api.all_pages(path + "/bounces", "bounces", {"pageSize": 10000}),
        )
    steps = {
        s.encrypted_id: api.all_pages(
            f"/campaign-mailing/{s.encrypted_id}/recipients", "recipients", window
        )
        for c in sim.account.campaigns
        for s in c.steps
    }
    forms = {
        f.id: api.json(
            f"/form/result/{f.id}",
            {"startDate": first.replace("-", ""), "endDate": last.replace("-", "") + "235959"},
        )
        for f in sim.account.forms
    }
    return {"listing": listing, "mailings": mailings, "steps": steps, "forms": forms}


def test_a_day_is_the_same_whenever_the_simulator_started() -> None:
    """`make demo` then `make dev` fill one warehouse: their simulators start days apart, so
    the account must be a function of calendar days, not of the start."""
    early = NOW - timedelta(days=6, hours=5)
    with (
        Simulator(seed=4, scale=0.002, now=NOW, days=20) as late_sim,
        Simulator(seed=4, scale=0.002, now=early, days=20) as early_sim,
        late_sim.session() as late_api,
        early_sim.session() as early_api,
    ):
        first = (NOW - timedelta(days=20)).date().isoformat()  # the late one's first day
        last = (early + timedelta(days=2)).date().isoformat()  # the early one's last day
        early_sim.set_now(NOW)  # the same clock: the same events are visible
        late = served_days(late_sim, late_api, first, last)
        got = served_days(early_sim, early_api, first, last)
        assert len(late["listing"]) >= 10 and any(rows[3] for rows in late["mailings"].values())
        assert any(late["steps"].values()) and any(late["forms"].values())
        assert got["listing"] == late["listing"]
        assert got["mailings"] == late["mailings"]
        assert got["steps"] == late["steps"]
        assert got["forms"] == late["forms"]
        # The catalogues depend on the seed alone.
        for path in ("/campaign/list", "/form/list"):
            assert early_api.json(path) == late_api.json(path)


def test_a_heavy_day_adds_its_mailing_and_keeps_the_others() -> None:
    day = (NOW - timedelta(days=3)).date()
    plain = Simulator(seed=6, scale=0.002, now=NOW, days=10).account
    heavy = Simulator(seed=6, scale=0.002, now=NOW, days=10, heavy_days={day: 5000}).account
    assert [m.encrypted_id for m in heavy.mailings if not m.heavy] == [
        m.encrypted_id for m in plain.mailings
    ]
    assert [m.heavy for m in heavy.day_mailings(day)].count(True) == 1
    ordinary = next(m for m in plain.mailings if m.type == "EMAIL")
    twin = heavy.mailings_by_id[ordinary.encrypted_id]
    assert np.array_equal(
        plain.mailing_data(ordinary).recipients_idx, heavy.mailing_data(twin).recipients_idx
    )


def test_summary_counts_what_is_served(sim: Simulator, api: SignedSession) -> None:
    import httpx

    summary = httpx.get(sim.admin_url + "/summary").json()
    mailing = sent_emails(sim)[-3]
    day = mailing.listing(0)["scheduledStartDate"][:10]
    on_day = [m for m in sent_emails(sim) if m.listing(0)["scheduledStartDate"][:10] == day]
    if len(on_day) == 1 and all(m.type == "EMAIL" for m in on_day):
        path = f"/mailing/{mailing.encrypted_id}"
        assert summary["days"][day]["mailing_opens"] == len(api.all_pages(path + "/opens", "opens"))
    total = sum(row.get("mailing_recipients", 0) for row in summary["days"].values())
    assert total == summary["tables"]["mailing_recipients"]


def test_heavy_day_reaches_its_target() -> None:
    day = (NOW - timedelta(days=40)).date()
    sim = Simulator(seed=1, scale=0.001, now=NOW, days=45, heavy_days={day: 100_000})
    rows = sim.summary()["days"][day.isoformat()]["mailing_interactions"]
    assert 95_000 < rows < 110_000


def test_prewarm_renders_every_row() -> None:
    sim = Simulator(seed=2, scale=0.001, now=NOW, days=5)
    rows = sim.prewarm()
    assert rows == sum(len(r) for r in sim.account.row_sets())
    assert all(r.rendered_bytes() > 0 for r in sim.account.row_sets() if len(r))


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=946_684_800, max_value=4_000_000_000))
def test_naive_rendering_matches_zoneinfo(ts: int) -> None:
    expected = datetime.fromtimestamp(ts, tz=UTC).astimezone(ACCOUNT_TZ)
    assert format_many(np.array([ts], dtype=np.int64)) == [expected.strftime("%Y-%m-%dT%H:%M:%S")]


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1)))
def test_api_dates_parse_in_the_account_zone(moment: datetime) -> None:
    moment = moment.replace(microsecond=0)
    parsed = parse_api_date(moment.strftime("%Y-%m-%dT%H:%M:%S"))
    assert parsed == int(moment.replace(tzinfo=ACCOUNT_TZ).timestamp())


def test_no_contact_has_two_events_at_the_same_moment_after_the_horizon() -> None:
    """Repeat opens and clicks past the 30-day horizon are dropped, not clamped onto it
    (clamping gave one contact two opens at one timestamp: duplicate keys)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from spotler_pipeline.simulator import Simulator

    now = datetime(2026, 6, 15, 10, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))
    with Simulator(seed=3, scale=0.05, now=now, days=60) as sim:
        account = sim.account
        checked = 0
        for mailing in account.sent_mailings(0, int(now.timestamp()) - 31 * 86400, 10**12):
            data = account.mailing_data(mailing)
            for pos, ts in (
                (data.it.open_pos, data.it.open_ts),
                (data.it.click_pos, data.it.click_ts),
            ):
                pairs = set(zip(pos.tolist(), ts.tolist(), strict=True))
                assert len(pairs) == len(pos)
                checked += len(pos)
        assert checked > 0
