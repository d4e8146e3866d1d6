"""Follow-up rules and their actions, against the simulator's write endpoints.

The warehouse each test acts on is written directly (a few bounces, clicks and survey
answers of the simulator's own contacts), so the tests exercise the rules, the action log
and the requests, not the loaders (their own tests cover those).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pytest
from pydantic import PrivateAttr

from spotler_pipeline.client import contact_tag
from spotler_pipeline.defs.follow_up_assets import asset_key, build_rule_asset
from spotler_pipeline.defs.follow_up_rules import (
    FollowUpRuleError,
    Rule,
    load_rules,
    parse_rules,
)
from spotler_pipeline.defs.resources import ClockResource, SpotlerResource, WarehouseResource
from spotler_pipeline.simulator import Simulator
from spotler_pipeline.simulator._faults import Fault
from spotler_pipeline.simulator._writes import OPT_OUT_EVERY
from spotler_pipeline.warehouse import ensure_schema
from spotler_pipeline.warehouse.connection import open_warehouse
from spotler_pipeline.warehouse.lake import LakeSettings, open_lake
from spotler_pipeline_tests.pipeline_harness import TIMEZONE, all_groups_settings

SETTINGS = all_groups_settings()
SHIPPED = {r.name: r for r in load_rules()}


# -- a small warehouse of the simulator's contacts -------------------------------------------


def contacts(sim: Simulator, indexes: list[int]) -> list[str]:
    ids = sim.account.contacts.external_ids(np.array(indexes))
    assert all(ids), "a contact without an external id (optional in Spotler) cannot be written"
    return ids


def seed_warehouse(pipeline: Pipeline) -> None:
    """Contacts 1-5 received mailing m1 yesterday; 1-4 hard-bounced (1 soft-bounced too),
    1-3 clicked its webshop link and scored 3, 6 and 9 in the survey."""
    sim, now = pipeline.sim, pipeline.sim.now
    ids = dict(zip(range(1, 6), contacts(sim, list(range(1, 6))), strict=True))
    day = (now - timedelta(days=1)).date()
    insert(pipeline, {
        "mailing_recipients": [(day, "m1", c, f"enc-{i}") for i, c in ids.items()],
        "mailing_bounces": [
            (day, "m1", ids[i], f"enc-{i}", now - timedelta(hours=i + 1), "HARDBOUNCE")
            for i in range(1, 5)
        ]
        + [(day, "m1", ids[1], "enc-1", now - timedelta(hours=30), "SOFTBOUNCE")],
        "mailing_links": [(day, "m1", "L1", "shop", "https://x", None, "webshop")],
        "mailing_clicks": [
            (day, "m1", ids[i], f"enc-{i}", now - timedelta(hours=i), "L1") for i in range(1, 4)
        ],
        "form_results": [(day, "2104", f"r{i}", now, True, False, 2) for i in range(1, 4)],
        "form_answers": [
            (day, "2104", f"r{i}", 1, "21041", "Score", str(i * 3), "number", str(i * 3))
            for i in range(1, 4)
        ]
        + [(day, "2104", "r1", 4, "21044", "Opmerkingen", '"te laat"', "text", "te laat")],
        "contact_form_history": [
            (day, ids[i], "2104", "Klanttevredenheid", "normal", "final", f"r{i}", now, day,
             True, now)
            for i in range(1, 4)
        ],
    })  # fmt: skip


def add_contact(pipeline: Pipeline, index: int, table: str) -> None:
    """Contact ``index`` received m1 and hard-bounced (``mailing_bounces``) or clicked its
    webshop link (``mailing_clicks``): a day loaded later, e.g. by a backfill."""
    (contact,) = contacts(pipeline.sim, [index])
    now = pipeline.sim.now
    day = (now - timedelta(days=2)).date()
    last = {"mailing_bounces": "HARDBOUNCE", "mailing_clicks": "L1"}[table]
    insert(pipeline, {
        "mailing_recipients": [(day, "m1", contact, f"enc-{index}")],
        table: [(day, "m1", contact, f"enc-{index}", now - timedelta(hours=40), last)],
    })  # fmt: skip


def insert(pipeline: Pipeline, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    conn = pipeline.connect()
    try:
        ensure_schema(conn)
        for table, values in rows.items():
            for row in values:
                marks = ", ".join("?" * len(row))
                conn.execute(f"INSERT INTO spotler.{table} BY POSITION VALUES ({marks})", row)
    finally:
        conn.close()


def rule(name: str, **action: Any) -> Rule:
    """A shipped rule, its action changed by ``action`` (e.g. ``enabled=True``)."""
    shipped = SHIPPED[name].model_dump()
    if action:
        shipped["action"] = {**shipped["action"], **action}
    (changed,) = parse_rules([shipped])
    return changed


def trigger_of(sim: Simulator, active: bool) -> str:
    campaign = next(c for c in sim.account.campaigns if c.active == active)
    return campaign.triggers[0]["encryptedId"]


class FailingClock(ClockResource):
    """A clock whose sixth reading fails: a run that evaluated its rule and sent two events
    then fails as it claims the third."""

    _readings: int = PrivateAttr(default=0)

    def now(self, timezone: str) -> datetime:
        self._readings += 1
        if self._readings == 6:
            raise RuntimeError("the step died")
        return super().now(timezone)


class Pipeline:
    """The rules' runs on the DuckDB file, or on a DuckLake (``lake``)."""

    def __init__(self, sim: Simulator, database: Path, lake: LakeSettings | None = None) -> None:
        self.sim, self.database, self.lake = sim, database, lake

    def connect(self, read_only: bool = False) -> Any:
        if self.lake is not None:
            return open_lake(self.lake, read_only=read_only)
        return open_warehouse(self.database, read_only=read_only)

    def resources(self, **spotler: Any) -> dict[str, Any]:
        return {
            "spotler": SpotlerResource(
                consumer_key=self.sim.consumer_key,
                consumer_secret=self.sim.consumer_secret,
                base_url=self.sim.base_url,
                timezone=TIMEZONE,
                **spotler,
            ),
            "warehouse": WarehouseResource(
                database=str(self.database),
                ducklake_catalog=self.lake.catalog if self.lake else None,
                ducklake_data_path=self.lake.data_path if self.lake else None,
            ),
            "clock": ClockResource(fixed_now=self.sim.now.isoformat()),
        }

    def run(self, *rules: Rule, config: dict[str, Any] | None = None, **kw: Any) -> Any:
        assets = [build_rule_asset(r, SETTINGS) for r in rules]
        run_config = None
        if config:
            run_config = {"ops": {f"follow_ups__{r.name}": {"config": config} for r in rules}}
        return dg.materialize(assets, resources=self.resources(), run_config=run_config, **kw)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        conn = self.connect(read_only=True)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def status(self, name: str) -> dict[str, Any]:
        conn = self.connect(read_only=True)
        try:
            cursor = conn.execute(
                "SELECT * FROM follow_ups.follow_up_status WHERE rule = ?", [name]
            )
            names = [d[0] for d in cursor.description]
            return dict(zip(names, cursor.fetchone(), strict=True))
        finally:
            conn.close()


def metadata(result: dg.ExecuteInProcessResult, name: str) -> dict[str, Any]:
    (event,) = [
        e for e in result.get_asset_materialization_events() if e.asset_key == asset_key(name)
    ]
    return {k: v.value for k, v in event.materialization.metadata.items()}


@pytest.fixture
def pipeline(simulator: Simulator, tmp_path: Path) -> Pipeline:
    database = tmp_path / "warehouse" / "spotler.duckdb"
    database.parent.mkdir()
    pipeline = Pipeline(simulator, database)
    seed_warehouse(pipeline)
    return pipeline


# -- the rules file ----------------------------------------------------------------------


def test_the_shipped_rules_are_the_three_of_the_design() -> None:
    assert list(SHIPPED) == ["hard_bounces", "survey_call_back", "webshop_clickers"]
    assert all(r.dry_run for r in SHIPPED.values())


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"name": "Bad Name"}, "rule 'Bad Name': name:"),
        ({"deps": ["mailing_bouncez"]}, "deps names no spotler table: mailing_bouncez"),
        ({"deps": ["mailing_bounces"]}, "reads campaign_mailing_bounces, missing from deps"),
        ({"params": {}}, "its query uses $start_date, which params does not set"),
        ({"params": {"start_date": None, "x": 1}}, "params sets x, which its query does not use"),
        ({"action": {"kind": "trigger_campaign"}}, "needs a target"),
        ({"action": {"kind": "set_property", "max_sends_per_run": 0}}, "max_sends_per_run"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_a_mistake_in_the_rules_is_one_line_naming_rule_and_problem(
    change: dict[str, Any], says: str
) -> None:
    entry = {**SHIPPED["hard_bounces"].model_dump(), **change}
    with pytest.raises(FollowUpRuleError) as error:
        parse_rules([entry], "rules.yaml")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("rules.yaml: rule '")
    assert says in message


def test_the_rules_file_can_be_another_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - name: x\n    query: SELECT 1\n    deps: [nothing]\n")
    monkeypatch.setenv("SPOTLER_FOLLOW_UP_RULES", str(path))
    with pytest.raises(FollowUpRuleError, match=r"rule 'x': deps names no spotler table"):
        load_rules()


# -- dry run -----------------------------------------------------------------------------


def test_a_rule_that_found_nothing_has_its_row_in_the_status_view(tmp_path: Path) -> None:
    """follow_up_status lists every evaluated rule, with zeros where it found no event."""
    from spotler_pipeline.warehouse import follow_ups as fu

    conn = open_warehouse(tmp_path / "w.duckdb")
    try:
        fu.ensure_follow_ups(conn)
        empty = (
            "SELECT 'k' AS event_key, 'c' AS contact_external_id, 'r' AS reason, "
            "now() AS event_at WHERE $found"
        )
        fu.evaluate_rule(conn, "quiet", empty, {"found": False})
        fu.evaluate_rule(conn, "busy", empty, {"found": True})
        fu.refresh_status_view(conn)
        rows = conn.execute(f"SELECT rule, events, new FROM {fu.STATUS_VIEW}").fetchall()
    finally:
        conn.close()
    assert rows == [("busy", 1, 1), ("quiet", 0, 0)]


def test_a_dry_run_sends_nothing_and_shows_what_it_would_send(pipeline: Pipeline) -> None:
    result = pipeline.run(*SHIPPED.values())
    assert pipeline.sim.writes == []
    assert not [r for r in pipeline.sim.requests if r[0] != "GET"]
    bounces = metadata(result, "hard_bounces")
    assert bounces["mode"] == "dry run"
    assert bounces["events"] == bounces["would_send"] == bounces["new_events"] == 4
    ids = contacts(pipeline.sim, [1, 2, 3, 4])
    warehouse_key = WarehouseResource(database=str(pipeline.database)).contact_key()
    assert contact_tag(ids[0], warehouse_key) in bounces["sample"]
    assert not any(i in str(bounces) for i in ids)
    # survey: scores 3 and 6 are <= 6 (9 is not); the free text of the same submission
    calls = pipeline.query("SELECT score, comments FROM follow_ups.survey_call_back ORDER BY score")
    assert calls == [(3.0, "Opmerkingen: te laat"), (6.0, None)]
    assert metadata(result, "webshop_clickers")["would_send"] == 3
    status = pipeline.status("hard_bounces")
    assert (status["events"], status["dry_run"], status["sent"], status["new"]) == (4, 4, 0, 0)
    assert all(c.passed for c in result.get_asset_check_evaluations())
    # a second dry run previews the same events, once each
    again = metadata(pipeline.run(SHIPPED["hard_bounces"]), "hard_bounces")
    assert (again["would_send"], again["new_events"]) == (4, 0)
    assert pipeline.query(
        "SELECT count(*) FROM follow_ups.action_log WHERE rule = 'hard_bounces'"
    ) == [(4,)]


# -- switched on: exactly once -------------------------------------------------------------


def test_each_event_is_sent_once_across_reruns_a_backfill_and_a_retried_run(
    pipeline: Pipeline,
) -> None:
    live = rule("hard_bounces", enabled=True)
    pipeline.run(SHIPPED["hard_bounces"])  # previewed first, as a user would
    first = metadata(pipeline.run(live), "hard_bounces")
    assert first["this_run"] == {"sent": 4, "skipped": 0}
    writes = pipeline.sim.writes
    assert sorted(w.contact for w in writes) == sorted(contacts(pipeline.sim, [1, 2, 3, 4]))
    assert writes[0].body["update"] is True
    assert set(writes[0].body["contact"]["properties"]) == {"hardbounce_date"}
    pipeline.run(live)  # a re-run
    # a retried run: one that failed after its first two sends is launched again
    fresh = rule("hard_bounces", enabled=True, target=None)
    add_contact(pipeline, 8, "mailing_bounces")
    add_contact(pipeline, 11, "mailing_bounces")  # 9 has no external id in this account
    add_contact(pipeline, 10, "mailing_bounces")
    broken = {**pipeline.resources(), "clock": FailingClock(fixed_now=pipeline.sim.now.isoformat())}
    failed = dg.materialize(
        [build_rule_asset(fresh, SETTINGS)], resources=broken, raise_on_error=False
    )
    assert not failed.success
    assert len(pipeline.sim.writes) == 6
    pipeline.run(live)
    assert len(pipeline.sim.writes) == 7
    # a backfill brings an older bounce: only that one is sent
    add_contact(pipeline, 7, "mailing_bounces")
    later = metadata(pipeline.run(live), "hard_bounces")
    assert later["this_run"] == {"sent": 1, "skipped": 0}
    written = [w.contact for w in pipeline.sim.writes]
    assert len(written) == len(set(written)) == 8
    status = pipeline.status("hard_bounces")
    assert (status["sent"], status["pending"], status["needs_attention"]) == (8, 0, 0)


def test_on_a_lake_each_event_is_previewed_then_sent_once(
    simulator: Simulator, tmp_path: Path, lake_settings: LakeSettings
) -> None:
    pipeline = Pipeline(simulator, tmp_path / "unused.duckdb", lake_settings)
    seed_warehouse(pipeline)
    dry = pipeline.run(*SHIPPED.values())
    assert [metadata(dry, r)["would_send"] for r in SHIPPED] == [4, 2, 3]
    live = rule("hard_bounces", enabled=True)
    assert metadata(pipeline.run(live), "hard_bounces")["this_run"] == {"sent": 4, "skipped": 0}
    pipeline.run(live)
    assert len(simulator.writes) == 4
    status = pipeline.status("hard_bounces")
    assert (status["sent"], status["dry_run"], status["needs_attention"]) == (4, 0, 0)


@pytest.mark.parametrize("why", ["opted_out", "inactive_campaign"])
def test_rejections_are_recorded_by_reason_and_not_retried(pipeline: Pipeline, why: str) -> None:
    sim = pipeline.sim
    if why == "opted_out":
        # contact OPT_OUT_EVERY - 1 is opted out in the simulated account
        add_contact(pipeline, OPT_OUT_EVERY - 1, "mailing_clicks")
        live = rule("webshop_clickers", enabled=True, target=trigger_of(sim, active=True))
        expected = {"sent": 3, "rejected": 1}
        reason = "CONTACT_OPTOUT: Contact has opted out"
    else:
        live = rule("webshop_clickers", enabled=True, target=trigger_of(sim, active=False))
        expected = {"rejected": 3}
        reason = "INVALID_STATE: Campaign inactive"
    first = metadata(pipeline.run(live), "webshop_clickers")
    assert first["this_run"] == {**expected, "skipped": 0}
    requests = len([r for r in sim.requests if r[0] == "POST"])
    again = metadata(pipeline.run(live), "webshop_clickers")
    assert again["this_run"] == {"skipped": 0}
    assert len([r for r in sim.requests if r[0] == "POST"]) == requests
    assert again["rejected_by_reason"] == {reason: expected["rejected"]}
    assert len(sim.writes) == expected.get("sent", 0)


def test_a_503_is_retried_within_the_run(pipeline: Pipeline) -> None:
    sim = pipeline.sim
    sim.inject(Fault("server_error", r"/campaign/trigger/", times=2, status=503))
    live = rule("webshop_clickers", enabled=True, target=trigger_of(sim, active=True))
    result = pipeline.run(live)
    assert metadata(result, "webshop_clickers")["this_run"] == {"sent": 3, "skipped": 0}
    statuses = [r[3] for r in sim.requests if r[0] == "POST"]
    assert statuses.count(503) == 2 and statuses.count(204) == 3
    assert len(sim.writes) == 3


def test_a_transient_failure_is_pending_and_sent_on_the_next_run(pipeline: Pipeline) -> None:
    sim = pipeline.sim
    # every attempt answered 503 (with Retry-After: 0, so the retries take no time)
    sim.inject(Fault("server_error", r"/contact/", times=None, status=503, retry_after=0))
    live = rule("hard_bounces", enabled=True)
    first = pipeline.run(live)
    assert metadata(first, "hard_bounces")["this_run"] == {"failed": 4, "skipped": 0}
    assert pipeline.status("hard_bounces")["pending"] == 4
    sim.clear_faults()
    second = metadata(pipeline.run(live), "hard_bounces")
    assert second["this_run"] == {"sent": 4, "skipped": 0}
    assert len(sim.writes) == 4


def test_the_cap_stops_a_runaway_rule_before_any_send(pipeline: Pipeline) -> None:
    live = rule("hard_bounces", enabled=True, max_sends_per_run=3)
    result = pipeline.run(live, raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    text = failure.step_failure_data.error.message
    assert (
        "Follow-up rule 'hard_bounces' would send 4 requests, more than max_sends_per_run=3; "
        "nothing was sent." in text
    )
    assert pipeline.sim.writes == []
    assert pipeline.query("SELECT count(*) FROM follow_ups.action_log") == [(0,)]


# -- a crash between the send and its record ---------------------------------------------------


def test_a_write_whose_answer_is_lost_is_unknown_and_not_sent_again(pipeline: Pipeline) -> None:
    sim = pipeline.sim
    # Spotler acts on the first write but answers after the client stopped waiting
    sim.inject(Fault("slow", r"/contact/", times=1, seconds=1.5))
    live = rule("hard_bounces", enabled=True)
    impatient = pipeline.resources(timeout_seconds=0.3)
    result = dg.materialize([build_rule_asset(live, SETTINGS)], resources=impatient)
    assert metadata(result, "hard_bounces")["this_run"] == {
        "sent": 3,
        "unknown": 1,
        "skipped": 0,
    }
    while len(sim.writes) < 4:  # the slow one lands after all
        time.sleep(0.05)
    pipeline.run(live)
    assert len(sim.writes) == 4
    assert pipeline.status("hard_bounces")["needs_attention"] == 1


def test_a_send_left_unrecorded_is_never_resent_without_a_warning(pipeline: Pipeline) -> None:
    live = rule("hard_bounces", enabled=True)
    pipeline.run(SHIPPED["hard_bounces"])
    (key,) = pipeline.query(
        "SELECT event_key FROM follow_ups.hard_bounces ORDER BY event_at LIMIT 1"
    )[0]
    # what a crash after the request leaves: a claimed attempt without its answer
    conn = pipeline.connect()
    conn.execute(
        "INSERT INTO follow_ups.action_log SELECT rule, event_key, contact_external_id, "
        "'set_property:hardbounce_date', 1, 'sending', NULL, NULL, NULL, 'crashed', now(), "
        "NULL FROM follow_ups.action_log WHERE event_key = ?",
        [key],
    )
    conn.close()
    with dg.DagsterInstance.ephemeral() as instance:
        result = pipeline.run(live, instance=instance, raise_on_error=False)
        logs = " ".join(e.message or "" for e in instance.all_logs(result.run_id) if e.level >= 30)
    assert "1 request(s) of an earlier run may have reached Spotler" in logs
    assert len(pipeline.sim.writes) == 3
    (check,) = [c for c in result.get_asset_check_evaluations() if not c.passed]
    assert check.check_name == "no_unresolved_sends"
    assert pipeline.status("hard_bounces")["needs_attention"] == 1
    pipeline.run(live)
    assert len(pipeline.sim.writes) == 3
    # a person checked the contact in Spotler and decides to send it after all
    pipeline.run(live, config={"resend_unknown": True})
    assert len(pipeline.sim.writes) == 4


_CHILD = """
import sys
import dagster as dg
from spotler_pipeline.defs.follow_up_assets import build_rule_asset
from spotler_pipeline.defs.follow_up_rules import parse_rules
from spotler_pipeline.defs.resources import ClockResource, SpotlerResource, WarehouseResource
from spotler_pipeline_tests.test_follow_ups import SETTINGS, SHIPPED

base_url, key, secret, database, now = sys.argv[1:]
entry = SHIPPED["hard_bounces"].model_dump()
entry["action"]["enabled"] = True
(live,) = parse_rules([entry])
dg.materialize(
    [build_rule_asset(live, SETTINGS)],
    resources={
        "spotler": SpotlerResource(consumer_key=key, consumer_secret=secret, base_url=base_url),
        "warehouse": WarehouseResource(database=database),
        "clock": ClockResource(fixed_now=now),
    },
)
"""


def test_kill_9_between_the_send_and_its_record_makes_no_duplicate(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    sim = pipeline.sim
    # the first write is answered slowly: the process is killed while it waits
    slow = sim.inject(Fault("slow", r"/contact/", times=1, seconds=3))
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(_CHILD))
    args = [sim.base_url, sim.consumer_key, sim.consumer_secret, str(pipeline.database)]
    child = subprocess.Popen(
        [sys.executable, str(script), *args, sim.now.isoformat()],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        while slow.fired == 0 and child.poll() is None:
            time.sleep(0.05)
        assert child.poll() is None, "the child ended before its first write"
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
    while not sim.writes:  # Spotler acts on the request after all
        time.sleep(0.05)
    assert pipeline.query("SELECT status FROM follow_ups.action_log WHERE status <> 'dry_run'") == [
        ("sending",)
    ]
    with dg.DagsterInstance.ephemeral() as instance:
        result = pipeline.run(rule("hard_bounces", enabled=True), instance=instance)
        logs = " ".join(e.message or "" for e in instance.all_logs(result.run_id))
    assert "may have reached Spotler without their answer being recorded" in logs
    # the killed run's contact was not sent a second time; the three others were sent
    written = [w.contact for w in sim.writes]
    assert len(written) == len(set(written)) == 4
    assert pipeline.status("hard_bounces")["needs_attention"] == 1
