"""A server that caps its pages below ``pageSize`` (issue 9, "Paging by next").

The simulator's ``short_pages`` fault serves at most ``max_rows`` records a page while
``paging.next`` still points further. ``next`` decides whether more follows, never a short
page: the client's every paged endpoint and every paged asset must still get every row.
Expected counts come from the simulator's own account (its truth), not from our client.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, unquote

import dagster as dg
import pytest

from spotler_pipeline.client import ClientSettings, SpotlerClient
from spotler_pipeline.simulator import Fault, Simulator
from spotler_pipeline_tests.pipeline_harness import (
    CAMPAIGN_CATALOG,
    CAMPAIGN_INTERACTIONS,
    MAILING_ASSETS,
    MAILING_INTERACTIONS,
    FullHarness,
    harness_with_all_groups,
    key,
    served_counts,
)
from spotler_pipeline_tests.test_client_support import rows_of

ROOT = Path(__file__).resolve().parent.parent
PAGES = 4  # each report is served in about this many pages (at least two where it can be)
HISTORIES = ("contact_mailing_history", "contact_campaign_mailing_history", "contact_form_history")


def short_pages(sim: Simulator, path_pattern: str, max_rows: int) -> Fault:
    return sim.inject(
        Fault("short_pages", path_pattern=path_pattern, max_rows=max_rows, times=None)
    )


def cap_for(rows: int) -> int:
    """A page cap that splits ``rows`` records into about ``PAGES`` pages."""
    return max(1, rows // PAGES)


def later_pages(sim: Simulator, path_part: str) -> int:
    """Requests answered for paths containing ``path_part`` beyond the first page."""
    return sum(
        1
        for _, path, query, status in sim.requests
        if path_part in unquote(path)
        and status == 200
        and dict(parse_qsl(query)).get("after", "0") != "0"
    )


def epoch(sim: Simulator) -> int:
    return int(sim.now.timestamp())


# -- the account's truth -------------------------------------------------------------------


@dataclass
class Targets:
    """Ids with enough rows behind each paged endpoint, picked from the account itself."""

    mailing: str
    mailing_rows: dict[str, int]  # recipients/opens/clicks/bounces visible now
    opener: str  # a contact with several opens of the mailing
    opener_opens: int
    clicker: str  # a contact with several clicks in the mailing
    clicker_clicks: int
    steps: dict[str, str]  # kind -> the campaign message with the most rows of that kind
    subscription: str  # a subscription with several opens of steps["opens"]
    history_contacts: dict[str, str]  # table -> a contact with a long history there


def targets(sim: Simulator) -> Targets:
    account, now = sim.account, epoch(sim)
    sent = [m for m in account.mailings if m.sent(now) and m.type == "EMAIL"]

    def visible(m) -> dict[str, int]:  # noqa: ANN001
        d = account.mailing_data(m)
        return {
            "recipients": len(d.recipients),
            "opens": d.opens.visible(now),
            "clicks": d.clicks.visible(now),
            "bounces": d.bounces.visible(now),
        }

    mailing = max(sent, key=lambda m: min(visible(m).values()))
    data = account.mailing_data(mailing)
    ids = account.contacts.external_ids
    opens = Counter(data.opens.contact[: data.opens.visible(now)].tolist())
    clicks = Counter(data.clicks.contact[: data.clicks.visible(now)].tolist())
    (opener, n_opens), (clicker, n_clicks) = opens.most_common(1)[0], clicks.most_common(1)[0]

    steps = [s for c in account.campaigns for s in c.steps]
    by_kind = {
        kind: max(steps, key=lambda s, k=kind: getattr(account.step_data(s), k).visible(now))
        for kind in ("recipients", "opens", "clicks", "bounces")
    }
    step_opens = account.step_data(by_kind["opens"]).opens
    assert step_opens.sub is not None
    subs = Counter(step_opens.sub[: step_opens.visible(now)].tolist())

    recipients = data.recipients.contact[:300].tolist()
    campaign_contacts = Counter(
        int(c)
        for s in steps
        for rows in [account.step_data(s).recipients]
        for c in rows.contact[: rows.visible(now)]
    )
    submitters = Counter(
        int(account.form_data(f).contact[k])
        for f in account.forms
        for k in range(len(account.form_data(f).ts))
        if account.form_data(f).ts[k] <= now
    )
    history = {
        "contact_mailing_history": max(
            recipients, key=lambda c: len(account.mailing_history(c, now))
        ),
        "contact_campaign_mailing_history": campaign_contacts.most_common(1)[0][0],
        "contact_form_history": submitters.most_common(1)[0][0],
    }
    return Targets(
        mailing=mailing.encrypted_id,
        mailing_rows=visible(mailing),
        opener=ids([opener])[0],
        opener_opens=n_opens,
        clicker=ids([clicker])[0],
        clicker_clicks=n_clicks,
        steps={kind: s.encrypted_id for kind, s in by_kind.items()},
        subscription=str(subs.most_common(1)[0][0]),
        history_contacts={t: ids([c])[0] for t, c in history.items()},
    )


def history_truth(sim: Simulator, table: str, external_id: str) -> int:
    account, now = sim.account, epoch(sim)
    contact = account.contacts.lookup(external_id)
    assert contact is not None
    history = {
        "contact_mailing_history": account.mailing_history,
        "contact_campaign_mailing_history": account.campaign_history,
        "contact_form_history": account.form_history,
    }[table]
    return len(history(contact, now))


# -- the client against the simulator -------------------------------------------------------


def make_client(sim: Simulator) -> SpotlerClient:
    return SpotlerClient(
        ClientSettings(
            sim.consumer_key,
            sim.consumer_secret,
            base_url=sim.base_url,
            backoff_initial=0.01,
            backoff_max=0.05,
            timeout=10.0,
        )
    )


@dataclass
class Endpoint:
    """One paged endpoint read through the client: its records (for a bulk endpoint, the rows
    of its Arrow batches); ``truth`` is what the account says it holds."""

    path_part: str
    records: Callable[[SpotlerClient, Targets, Simulator], Iterable[Any]]
    truth: Callable[[Targets, Simulator], int] | None


def window(sim: Simulator) -> tuple[datetime, datetime]:
    return sim.now - timedelta(days=30), sim.now


def _mailing(kind: str) -> Endpoint:
    return Endpoint(
        f"/{kind}",
        lambda c, t, s: rows_of(getattr(c, f"mailing_{kind[:-1]}_batches")(t.mailing)),
        lambda t, s: t.mailing_rows[kind],
    )


def _campaign(kind: str) -> Endpoint:
    return Endpoint(
        f"/{kind}",
        lambda c, t, s: rows_of(
            getattr(c, f"campaign_mailing_{kind[:-1]}_batches")(t.steps[kind], *window(s))
        ),
        None,  # windowed: compared with the same read without the fault
    )


def _history(table: str, method: str) -> Endpoint:
    return Endpoint(
        "/contact/",
        lambda c, t, s: getattr(c, method)(t.history_contacts[table]),
        lambda t, s: history_truth(s, table, t.history_contacts[table]),
    )


ENDPOINTS = {
    **{f"mailing_{k}": _mailing(k) for k in ("recipients", "opens", "clicks", "bounces")},
    "mailing_contact_opens": Endpoint(
        "/opens/",
        lambda c, t, s: c.iter_mailing_contact_opens(t.mailing, t.opener),
        lambda t, s: t.opener_opens,
    ),
    "mailing_contact_clicks": Endpoint(
        "/clicks/",
        lambda c, t, s: c.iter_mailing_contact_clicks(t.mailing, t.clicker),
        lambda t, s: t.clicker_clicks,
    ),
    **{f"campaign_{k}": _campaign(k) for k in ("recipients", "opens", "clicks", "bounces")},
    "campaign_subscription_opens": Endpoint(
        "/opens/",
        lambda c, t, s: c.iter_campaign_mailing_subscription_opens(
            t.steps["opens"], t.subscription
        ),
        None,
    ),
    "contact_mailing_history": _history("contact_mailing_history", "iter_contact_mailing_history"),
    "contact_campaign_mailing_history": _history(
        "contact_campaign_mailing_history", "iter_contact_campaign_mailing_history"
    ),
    "contact_form_history": _history("contact_form_history", "iter_contact_form_history"),
}


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_client_reads_every_row_of_short_pages(simulator: Simulator, name: str) -> None:
    endpoint = ENDPOINTS[name]
    t = targets(simulator)
    with make_client(simulator) as client:
        records = list(endpoint.records(client, t, simulator))
        if endpoint.truth is not None:
            assert len(records) == endpoint.truth(t, simulator)
        assert len(records) >= 1

        simulator.reset_log()
        cap = cap_for(len(records))
        fault = short_pages(simulator, ".*", cap)
        short_records = list(endpoint.records(client, t, simulator))

    assert short_records == records
    if len(records) > cap:  # the fault really split the report into pages
        assert later_pages(simulator, endpoint.path_part) > 0
    # one answer per page, next absent on the last one: no extra request past the end
    assert fault.fired == max(1, -(-len(records) // cap))


# -- the assets against the simulator --------------------------------------------------------


@pytest.fixture
def full(simulator: Simulator, tmp_path: Path) -> FullHarness:
    return harness_with_all_groups(simulator, tmp_path / "warehouse" / "spotler.duckdb")


def test_mailing_interactions_land_whole_from_short_pages(full: FullHarness) -> None:
    sim = full.sim
    days = sim.summary()["days"]
    day = date.fromisoformat(
        max(
            (d for d, row in days.items() if row.get("mailings")),
            key=lambda d: (days[d]["mailings"], days[d].get("mailing_bounces", 0), d),
        )
    )
    expected = served_counts(sim, MAILING_INTERACTIONS, day, day)
    assert min(expected.values()) >= 2
    for table, rows in expected.items():
        short_pages(sim, f"/{table.removeprefix('mailing_')}$", cap_for(rows))

    assert full.materialize(MAILING_ASSETS, day=day).success

    assert {t: full.count(t) for t in MAILING_INTERACTIONS} == expected
    for table in MAILING_INTERACTIONS:
        assert later_pages(sim, f"/{table.removeprefix('mailing_')}") > 0, table


def test_campaign_interactions_land_whole_from_short_pages(full: FullHarness) -> None:
    sim = full.sim
    last = full.now.date()
    first = last - timedelta(days=9)
    expected = served_counts(sim, CAMPAIGN_INTERACTIONS, first, last)
    assert expected["campaign_mailing_recipients"] > 0
    short_pages(sim, "/campaign-mailing/", 2)

    assert full.materialize(CAMPAIGN_CATALOG).success  # steps_in_catalogue blocks
    assert full.materialize(CAMPAIGN_INTERACTIONS, days=(first, last)).success

    assert {t: full.count(t) for t in CAMPAIGN_INTERACTIONS} == expected
    for kind in ("recipients", "opens", "clicks"):
        assert later_pages(sim, f"/{kind}") > 0, kind


def test_contact_histories_land_whole_from_short_pages(full: FullHarness) -> None:
    sim = full.sim
    chosen = targets(sim).history_contacts
    contacts = sorted(set(chosen.values()))
    expected = {table: sum(history_truth(sim, table, c) for c in contacts) for table in HISTORIES}
    assert all(history_truth(sim, t, c) >= 2 for t, c in chosen.items())
    short_pages(sim, "/contact/", 1)

    result = dg.materialize(
        full.assets_for(HISTORIES),
        selection=[key(t) for t in HISTORIES],
        resources=full.resources(),
        partition_key=full.now.date().isoformat(),
        run_config=full.contacts_run_config(contacts),
    )

    assert result.success
    assert {t: full.count(t) for t in HISTORIES} == expected
    for table, contact in chosen.items():
        assert full.count(table, "contact_external_id = ?", [contact]) == history_truth(
            sim, table, contact
        )
    assert later_pages(sim, "/contact/") > 0


# -- the benchmark's floor fetcher ---------------------------------------------------------


def load_bench() -> ModuleType:
    """``scripts/bench.py`` as a module (it is a script, not part of the package)."""
    name = "spotler_bench_script"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "bench.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_bench_floor_reads_every_row_of_short_pages(simulator: Simulator) -> None:
    bench = load_bench()
    days = simulator.summary()["days"]
    day = max(
        (d for d, row in days.items() if row.get("mailings")),
        key=lambda d: (days[d]["mailing_interactions"], d),
    )
    expected, mailings = days[day]["mailing_interactions"], days[day]["mailings"]
    max_rows = 50
    assert expected > 4 * max_rows * mailings

    faults = bench.inject_short_pages(simulator.base_url, max_rows)  # the admin endpoint
    assert [(f["kind"], f["max_rows"], f["times"]) for f in faults] == [
        ("short_pages", max_rows, None)
    ]
    (fault,) = simulator.faults
    report = bench.floor(simulator.base_url, simulator.consumer_key, simulator.consumer_secret, day)

    assert report["mailings"] == mailings
    assert report["rows"] == expected
    # every page of every report: the listing, then ceil(rows / max_rows) pages per report
    assert report["requests"] == 1 + fault.fired >= 1 + -(-expected // max_rows)


def test_bench_measures_a_process_trees_cpu_time_and_exit_code() -> None:
    """The CPU seconds the benchmark prints beside each contender are the kernel's account
    of the whole process, children it waited for included; the exit code is kept."""
    bench = load_bench()
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
    child = f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {burn!r}])\n"
    run = bench.measure(
        "probe",
        "2025-01-01",
        [sys.executable, "-c", child + burn + "print('{\"rows\": 1}')\nsys.exit(3)"],
        dict(os.environ),
    )
    assert run.returncode == 3
    assert run.report == {"rows": 1}
    assert 0.6 <= run.cpu_s < 0.6 + run.wall_s  # both 0.3 s loops, plus two start-ups
    assert "CPU" in bench.line(run) and "cores)" in bench.line(run)
