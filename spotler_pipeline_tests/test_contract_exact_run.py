"""A run against a Spotler that leaves out every optional field the contract allows it to
(the simulator's contract-exact mode) fills every table with exactly what was served."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from spotler_pipeline.simulator import Simulator
from spotler_pipeline_tests.conftest import FIXED_NOW
from spotler_pipeline_tests.pipeline_harness import (
    CAMPAIGN_CATALOG,
    CAMPAIGN_INTERACTIONS,
    MAILING_ASSETS,
    harness_with_all_groups,
)

DAYS = 5
HISTORIES = ("contact_mailing_history", "contact_campaign_mailing_history", "contact_form_history")
FORM_RESULTS = ("form_results", "form_answers")


@pytest.fixture
def exact() -> Iterator[Simulator]:
    with Simulator(seed=11, scale=0.01, now=FIXED_NOW, days=21, contract_exact=True) as sim:
        yield sim


def test_every_table_fills_with_what_was_served(exact: Simulator, tmp_path: Path) -> None:
    h = harness_with_all_groups(exact, tmp_path / "warehouse" / "spotler.duckdb")
    today = h.now.date()
    days = (today - timedelta(days=DAYS - 1), today)
    for names, window in [
        (MAILING_ASSETS, {"days": days}),
        (("mailing_stats_snapshots",), {"day": today}),
        (CAMPAIGN_CATALOG, {}),
        (CAMPAIGN_INTERACTIONS, {"days": days}),
        (("forms",), {}),
        (FORM_RESULTS, {"days": days}),
        (HISTORIES, {"day": today - timedelta(days=1)}),
    ]:
        assert h.materialize(names, **window).success, names

    account = exact.account
    served = h.served_counts(
        (*MAILING_ASSETS, *CAMPAIGN_INTERACTIONS, "form_results"), days[0], days[1]
    )
    steps = [s for c in account.campaigns for s in account.live_steps(c)]
    answers = 0
    for form in account.live_forms():
        data = account.form_data(form)
        for k, ts in enumerate(data.ts.tolist()):
            if h.day_start(days[0]).timestamp() <= ts <= h.now.timestamp():
                answers += len(account.form_result(form, k).get("answers", []))
    served |= {
        "campaigns": len(account.campaigns),
        "campaign_triggers": sum(len(c.triggers) for c in account.campaigns),
        "campaign_mailings": len(steps),
        "campaign_mailing_links": sum(len(s.links) for s in steps),
        "forms": len(account.live_forms()),
        "form_answers": answers,
        "mailing_stats_snapshots": len(h.sent_mailings(today - timedelta(days=60), today)),
    }
    stored = {table: h.count(table) for table in served}
    assert stored == served
    assert all(stored.values()), stored
    for table in HISTORIES:
        assert h.count(table) > 0, table
    # what the contract leaves out lands as NULL (unknown), never as 0 or ''
    assert h.count("mailings", "archive_link IS NOT NULL") == 0
    assert h.count("mailing_stats_snapshots", "to_webshop_count IS NOT NULL") == 0
    assert h.count("form_answers", "answer_type = 'null'") > 0
