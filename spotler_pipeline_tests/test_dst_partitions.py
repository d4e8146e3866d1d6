"""Partitions on the days the clocks change (Europe/Amsterdam): the last Sunday of March has
23 hours (02:00-03:00 does not exist), the last Sunday of October 25 (02:00-03:00 happens
twice). A day's partition is that local day, whatever its length: its window, the events of
its odd hours, and exactly the simulator's rows for it.

The simulator serves naive account-zone times, so a time in the repeated hour is ambiguous
on the wire: it is compared as the wall-clock time the API gave, and must land on its day.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from spotler_pipeline.simulator import Simulator
from spotler_pipeline_tests.pipeline_harness import (
    CAMPAIGN_CATALOG,
    CAMPAIGN_INTERACTIONS,
    MAILING_ASSETS,
    TIMEZONE,
    FullHarness,
    all_groups_settings,
    harness_with_all_groups,
)

TZ = ZoneInfo(TIMEZONE)
SHORT_DAY, LONG_DAY = date(2025, 3, 30), date(2025, 10, 26)  # 23 h, 25 h
RESULTS = ("form_results", "form_answers")
DAILY = (*MAILING_ASSETS, *CAMPAIGN_INTERACTIONS, *RESULTS)
#: Event-time column of each event-day table.
EVENT_TIME = {
    "campaign_mailing_recipients": "send_date",
    "campaign_mailing_opens": "open_date",
    "campaign_mailing_clicks": "click_date",
    "campaign_mailing_bounces": "bounce_date",
    "form_results": "submitted_at",
}
#: The hours around each change that a day-length mistake would put on the wrong day, each
#: with campaign events served in it (checked below, so the test cannot pass on no data):
#: (day, "HH" wall-clock hour on that day).
ODD_HOURS = {
    SHORT_DAY: ("03", "23"),  # 03:xx follows 01:59:59; the next day's 00:00 has mailings
    LONG_DAY: ("00", "02", "23"),  # 02:xx twice; 23:xx is the 25th hour
}


@pytest.fixture(params=[SHORT_DAY, LONG_DAY], ids=["march_23h", "october_25h"])
def day(request: pytest.FixtureRequest) -> date:
    return request.param


@pytest.fixture
def dst_sim(day: date) -> Iterator[Simulator]:
    """Seed 16 sends two mailings at 00:00 on 31 March 2025 (a 24-hour 30 March would take
    them in) and one on each change day."""
    now = datetime(day.year, day.month, day.day, 12, tzinfo=TZ) + timedelta(days=2)
    with Simulator(seed=16, scale=0.02, now=now, days=4) as sim:
        yield sim


@pytest.fixture
def harness(dst_sim: Simulator, tmp_path: Path) -> FullHarness:
    settings = replace(all_groups_settings(), partitions_start="2025-01-01")
    return harness_with_all_groups(
        dst_sim, tmp_path / "warehouse" / "spotler.duckdb", settings=settings
    )


def wall_clock(moment: datetime) -> str:
    return moment.astimezone(TZ).strftime("%Y-%m-%dT%H:%M:%S")


def served_events(sim: Simulator, table: str) -> list[str]:
    """Wall-clock times (as the API gives them) of every ``table`` row served by now."""
    account, now = sim.account, sim.now.timestamp()
    if table == "form_results":
        sets = [account.form_data(f).ts for f in account.live_forms()]
    else:
        kind = table.removeprefix("campaign_mailing_")
        sets = [
            getattr(account.step_data(s), kind).ts
            for c in account.campaigns
            for s in account.live_steps(c)
        ]
    return [
        wall_clock(datetime.fromtimestamp(int(ts), TZ))
        for ts in (t for a in sets for t in a)
        if ts <= now
    ]


def stored_events(harness: FullHarness, table: str) -> dict[str, list[str]]:
    """Wall-clock event times of the stored rows of ``table``, by partition day."""
    column = "submit_day" if table == "form_results" else "event_day"
    rows = harness.query(f"SELECT {column}, {EVENT_TIME[table]} FROM spotler.{table}")
    out: dict[str, list[str]] = {}
    for partition, moment in rows:
        out.setdefault(partition.isoformat(), []).append(wall_clock(moment))
    return {d: sorted(times) for d, times in out.items()}


def served_by_day(sim: Simulator, table: str, days: list[date]) -> dict[str, list[str]]:
    wanted = {d.isoformat() for d in days}
    out: dict[str, list[str]] = {}
    for time in served_events(sim, table):
        if time[:10] in wanted:
            out.setdefault(time[:10], []).append(time)
    return {d: sorted(times) for d, times in out.items()}


def served_answers(sim: Simulator, day: date) -> int:
    """Answers of the submissions served by now on ``day`` (one per field of the form)."""
    account, now = sim.account, sim.now.timestamp()
    return sum(
        len(account.form_result(form, k)["answers"])
        for form in account.live_forms()
        for k, ts in enumerate(account.form_data(form).ts)
        if ts <= now and datetime.fromtimestamp(int(ts), TZ).date() == day
    )


def test_the_partition_is_the_local_day_of_23_or_25_hours(harness: FullHarness, day: date) -> None:
    for name in DAILY:
        (asset,) = harness.assets_for([name])
        window = asset.partitions_def.time_window_for_partition_key(day.isoformat())
        start = datetime(day.year, day.month, day.day, tzinfo=TZ)
        following = day + timedelta(days=1)
        end = datetime(following.year, following.month, following.day, tzinfo=TZ)
        assert (window.start, window.end) == (start, end), name
        hours = 23 if day == SHORT_DAY else 25
        # (aware datetimes of one zone subtract as wall clocks: compare instants)
        assert window.end.timestamp() - window.start.timestamp() == hours * 3600, name


def test_a_change_day_stores_exactly_its_rows_and_its_odd_hours_on_it(
    harness: FullHarness, day: date
) -> None:
    sim = harness.sim
    days = [day - timedelta(days=1), day, day + timedelta(days=1)]
    # the odd hours have events to misplace, and the day after March's change sends at 00:00
    campaign_hours = {
        t[:13]
        for table in CAMPAIGN_INTERACTIONS
        for times in served_by_day(sim, table, days).values()
        for t in times
    }
    for hour in ODD_HOURS[day]:
        on = day + timedelta(days=1) if hour == "00" else day
        assert f"{on.isoformat()}T{hour}" in campaign_hours, hour
    if day == SHORT_DAY:
        after = harness.sent_mailings(days[2], days[2])
        assert any(
            datetime.fromtimestamp(m.send_ts, TZ).time().isoformat() == "00:00:00" for m in after
        )

    # the catalogues the interactions' checks look their items up in (unpartitioned)
    assert harness.materialize([*CAMPAIGN_CATALOG, "forms"]).success
    # the change day alone: its rows, none of its neighbours'
    assert harness.materialize(DAILY, day=day).success
    mailings = harness.sent_mailings(day, day)
    assert mailings
    stored = dict(harness.query("SELECT encrypted_id, send_day FROM spotler.mailings"))
    assert stored == {m.encrypted_id: day for m in mailings}
    expected = {
        **harness.served_counts([t for t in DAILY if t != "form_answers"], day, day),
        "form_answers": served_answers(sim, day),
    }
    assert {t: harness.count(t) for t in DAILY} == expected
    for table in EVENT_TIME:
        served = served_by_day(sim, table, [day])
        assert stored_events(harness, table) == served, table

    # then the days either side: each row on the local day of its time, none twice
    assert harness.materialize(DAILY, day=days[0]).success
    assert harness.materialize(DAILY, day=days[2]).success
    for table in EVENT_TIME:
        assert stored_events(harness, table) == served_by_day(sim, table, days), table
    stored = dict(harness.query("SELECT encrypted_id, send_day FROM spotler.mailings"))
    mailings = harness.sent_mailings(days[0], days[2])
    assert stored == {m.encrypted_id: harness.send_day(m) for m in mailings}
    for table in MAILING_ASSETS:
        assert harness.query(
            f"SELECT send_day, count(*) FROM spotler.{table} GROUP BY ALL ORDER BY ALL"
        ) == sorted(harness.served_per_day(table, days[0], days[2]).items()), table
