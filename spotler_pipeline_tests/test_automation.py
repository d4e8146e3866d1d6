"""What runs when: ordered by dependency, not by clock, and the README says so.

The automation conditions are evaluated as the daemon's automation sensor would, tick by
tick (``dg.evaluate_automation_conditions``), with the upstream refreshes reported to the
instance in the order a slow morning might bring them.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from spotler_pipeline.definitions import build_definitions
from spotler_pipeline.defs.schedules import AUTOMATION_SENSOR_NAME, markdown_table
from spotler_pipeline_tests.pipeline_harness import TIMEZONE, all_groups_settings, key

README = Path(__file__).resolve().parent.parent / "README.md"
TZ = ZoneInfo(TIMEZONE)
DAY = date(2026, 6, 15)

MAILING_INTERACTIONS = ("mailing_recipients", "mailing_opens", "mailing_clicks", "mailing_bounces")
CAMPAIGN_CATALOG = ("campaigns", "campaign_triggers", "campaign_mailings", "campaign_mailing_links")
CAMPAIGN_INTERACTIONS = tuple(f"campaign_{t}" for t in MAILING_INTERACTIONS)
FORMS = ("forms",)
FORM_RESULTS = ("form_results", "form_answers")
CONTACT_HISTORIES = (
    "contact_mailing_history",
    "contact_campaign_mailing_history",
    "contact_form_history",
)


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    return build_definitions(all_groups_settings())


def _days(last: date, n: int) -> set[str]:
    return {(last - timedelta(days=k)).isoformat() for k in range(n)}


class Morning:
    """Ticks of the automation sensor over simulated time, against one instance."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
        self.defs, self.instance = defs, instance
        self.cursor = None

    def tick(self, hour: int, minute: int, day: date = DAY) -> dict[str, set[str | None]]:
        when = datetime(day.year, day.month, day.day, hour, minute, tzinfo=TZ)
        result = dg.evaluate_automation_conditions(
            defs=self.defs, instance=self.instance, evaluation_time=when, cursor=self.cursor
        )
        self.cursor = result.cursor
        requested = {}
        for name in (
            *CAMPAIGN_CATALOG,
            *CAMPAIGN_INTERACTIONS,
            *FORMS,
            *FORM_RESULTS,
            *CONTACT_HISTORIES,
            *MAILING_INTERACTIONS,
            "mailings",
            "mailing_stats_snapshots",
        ):
            partitions = result.get_requested_partitions(key(name))
            if partitions:
                requested[name] = set(partitions)
        return requested

    def refreshed(self, names: tuple[str, ...], partitions: set[str] | None = None) -> None:
        """A run finished: each asset of ``names`` materialised (each of ``partitions``)."""
        for name in names:
            for partition in sorted(partitions) if partitions else [None]:
                self.instance.report_runless_asset_event(
                    dg.AssetMaterialization(asset_key=key(name), partition=partition)
                )


def test_contact_histories_never_run_before_the_interaction_refresh_they_read(
    defs: dg.Definitions,
) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        morning = Morning(defs, instance)
        yesterday_evening = morning.tick(22, 0, DAY - timedelta(days=1))
        assert yesterday_evening == {}
        assert morning.tick(5, 59) == {}, "nothing is due before 06:00"

        # 06:00: the catalogues are due; the mailing refresh is a schedule, which we let
        # queue (say, behind a backfill) until after 08:00.
        at_six = morning.tick(6, 1)
        assert at_six == dict.fromkeys((*CAMPAIGN_CATALOG, *FORMS), {None})
        assert morning.tick(6, 2) == {}, "requested once"

        # The campaign and form events follow the catalogues they refer to.
        morning.refreshed(CAMPAIGN_CATALOG)
        morning.refreshed(FORMS)
        after_catalogues = morning.tick(6, 5)
        assert after_catalogues == {
            **dict.fromkeys(CAMPAIGN_INTERACTIONS, _days(DAY, 3)),
            **dict.fromkeys(FORM_RESULTS, _days(DAY, 2)),
        }
        morning.refreshed(CAMPAIGN_INTERACTIONS, _days(DAY, 3))
        morning.refreshed(FORM_RESULTS, _days(DAY, 2))
        assert morning.tick(6, 20) == {}, "contact histories must wait for the mailing refresh"

        # The mailing refresh runs late, and its tables land one by one: still waiting.
        morning.refreshed(("mailing_recipients", "mailing_opens"), _days(DAY, 30))
        assert morning.tick(8, 0) == {}
        morning.refreshed(("mailing_clicks", "mailing_bounces"), _days(DAY, 30))

        # Only now: yesterday's and today's activity, once.
        after = morning.tick(8, 31)
        assert after == dict.fromkeys(CONTACT_HISTORIES, _days(DAY, 2))
        assert morning.tick(8, 32) == {}
        assert morning.tick(12, 0) == {}

        # The next day: yesterday's refreshes do not count; nothing before the new 06:00.
        next_day = DAY + timedelta(days=1)
        assert morning.tick(5, 0, next_day) == {}
        assert set(morning.tick(6, 1, next_day)) == {*CAMPAIGN_CATALOG, *FORMS}
        morning.refreshed(CAMPAIGN_CATALOG)
        morning.refreshed(FORMS)
        assert not set(morning.tick(6, 5, next_day)) & set(CONTACT_HISTORIES)
        morning.refreshed(CAMPAIGN_INTERACTIONS, _days(next_day, 3))
        morning.refreshed(FORM_RESULTS, _days(next_day, 2))
        morning.refreshed(MAILING_INTERACTIONS, _days(next_day, 30))
        assert morning.tick(6, 40, next_day) == dict.fromkeys(CONTACT_HISTORIES, _days(next_day, 2))


def test_the_automation_sensor_is_on_by_default(defs: dg.Definitions) -> None:
    sensor = defs.get_sensor_def(AUTOMATION_SENSOR_NAME)
    assert isinstance(sensor, dg.AutomationConditionSensorDefinition)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    # No schedule stands in for a dependency: what reads other tables has no schedule.
    names = {s.name for s in defs.schedules or []}
    assert {"spotler_mailings_daily", "spotler_statistics_daily"} <= names
    for chained in ("campaigns_catalog", "campaign_interactions", "forms", "form_results"):
        assert f"spotler_{chained}_daily" not in names
    assert "spotler_contact_histories_daily" not in names


def test_the_readme_what_runs_when_table_is_the_definitions(defs: dg.Definitions) -> None:
    text = README.read_text()
    match = re.search(
        r"<!-- what-runs-when:begin[^>]*-->\n(.*?)\n<!-- what-runs-when:end -->", text, re.S
    )
    assert match, "README.md has no what-runs-when table between its markers"
    assert match.group(1).strip() == markdown_table(defs), (
        "README's what-runs-when table differs from the definitions; regenerate it with "
        "`.venv/bin/python -m spotler_pipeline.defs.schedules`"
    )
