"""The form assets end to end against the simulator, into a temporary DuckDB file."""

import json
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from spotler_pipeline.defs.form_assets import answer_text, answer_type
from spotler_pipeline_tests.pipeline_harness import FullHarness

RESULTS = ("form_results", "form_answers")


@pytest.fixture
def harness(full_harness: FullHarness) -> FullHarness:
    return full_harness


def served_results(harness: FullHarness, first: date, last: date) -> dict[tuple[str, str], Any]:
    """Every submission on submit days first..last that the simulator serves as of now, by
    (form, result): from its own account, not read back through the client."""
    account, now = harness.sim.account, harness.now.timestamp()
    out = {}
    for form in account.live_forms():
        data = account.form_data(form)
        for k, (ts, result_id) in enumerate(zip(data.ts, data.result_ids, strict=True)):
            submitted_at = datetime.fromtimestamp(int(ts), harness.now.tzinfo)
            if ts <= now and first <= submitted_at.date() <= last:
                out[(str(form.id), str(result_id))] = SimpleNamespace(
                    submitted_at=submitted_at,
                    completed=bool(data.completed[k]),
                    test_result=bool(data.test[k]),
                    answers=account.form_result(form, k).get("answers", []),
                )
    return out


def test_forms_land_and_a_removed_form_is_marked_absent(harness: FullHarness) -> None:
    assert harness.materialize(["forms"]).success
    listed = harness.sim.account.live_forms()
    present = harness.query("SELECT id FROM spotler.forms WHERE present")
    assert {r[0] for r in present} == {str(f.id) for f in listed}
    assert len(listed) > 0
    assert harness.count("forms", "form_state = 'draft'") > 0

    gone = harness.sim.account.forms.pop()
    harness.sim.advance(timedelta(hours=1))
    assert harness.materialize(["forms"]).success
    assert harness.count("forms") == len(listed)
    assert harness.query("SELECT id FROM spotler.forms WHERE NOT present") == [(str(gone.id),)]


@pytest.mark.parametrize("span", [0, 13], ids=["one_day", "two_weeks"])
def test_submissions_and_answers_match_the_api(harness: FullHarness, span: int) -> None:
    last = harness.now.date() - timedelta(days=1)
    first = last - timedelta(days=span)
    assert harness.materialize(["forms"]).success  # forms_in_catalogue blocks
    if span:
        result = harness.materialize(RESULTS, days=(first, last))
    else:
        result = harness.materialize(RESULTS, day=last)
    assert result.success
    expected = served_results(harness, first, last)
    assert expected
    stored_ids = harness.query("SELECT form_id, form_result_id FROM spotler.form_results")
    assert {(str(f), str(r)) for f, r in stored_ids} == set(expected)
    assert harness.count("form_results") == len(expected)
    assert harness.count("form_answers") == sum(len(r.answers) for r in expected.values())
    stored = harness.query(
        "SELECT form_id, form_result_id, submitted_at, completed, test_result, submit_day "
        "FROM spotler.form_results"
    )
    for form_id, result_id, submitted_at, completed, test, day in stored:
        api = expected[(str(form_id), str(result_id))]
        assert (submitted_at, completed, test) == (api.submitted_at, api.completed, api.test_result)
        assert first <= day <= last
        assert day == api.submitted_at.astimezone(harness.now.tzinfo).date()


def test_rerun_replaces_exactly_its_partition(harness: FullHarness) -> None:
    last = harness.now.date()
    assert harness.materialize(["forms"]).success  # forms_in_catalogue blocks
    harness.materialize(RESULTS, days=(last - timedelta(days=6), last))
    day = last - timedelta(days=3)
    snapshot = {t: harness.query(f"SELECT * FROM spotler.{t} ORDER BY ALL") for t in RESULTS}
    assert harness.materialize(RESULTS, day=day).success
    assert {
        t: harness.query(f"SELECT * FROM spotler.{t} ORDER BY ALL") for t in RESULTS
    } == snapshot


def test_every_answer_type_is_kept_faithfully_and_rendered_as_text(harness: FullHarness) -> None:
    last = harness.now.date()
    assert harness.materialize(["forms"]).success  # forms_in_catalogue blocks
    assert harness.materialize(RESULTS, days=(last - timedelta(days=20), last)).success
    kinds = {r[0] for r in harness.query("SELECT DISTINCT answer_type FROM spotler.form_answers")}
    assert {"text", "list", "null"} <= kinds

    with harness.client() as c:
        for kind in sorted(kinds):
            form_id, result_id, rank, raw, text = harness.query(
                "SELECT form_id, form_result_id, rank, answer::VARCHAR, answer_text "
                "FROM spotler.form_answers WHERE answer_type = ? ORDER BY ALL LIMIT 1",
                [kind],
            )[0]
            api = c.get_form_result(form_id, result_id)
            original = next(a.answer for a in api.answers if a.rank == rank)
            assert json.loads(raw) == original, kind
            assert text == answer_text(original), kind
    # a multiple-choice answer is findable both as JSON and as text
    listed = harness.query(
        "SELECT answer_text, json_array_length(answer) FROM spotler.form_answers "
        "WHERE answer_type = 'list' AND json_array_length(answer) > 1 LIMIT 1"
    )
    if listed:
        assert listed[0][0].count(", ") == listed[0][1] - 1


@pytest.mark.parametrize(
    ("answer", "kind", "text"),
    [
        # as the contract has it: an array of strings
        (["7"], "text", "7"),
        (["Dames", "Sport"], "list", "Dames, Sport"),
        ([], "null", None),
        # tolerated: a bare value, or nulls inside the array
        ([None, "Ja"], "text", "Ja"),
        ("Nee", "text", "Nee"),
        (7, "number", "7"),
        (2.5, "number", "2.5"),
        (True, "boolean", "true"),
        ({"a": 1}, "object", '{"a":1}'),
        (None, "null", None),
    ],
)
def test_answer_rendering(answer: object, kind: str, text: str | None) -> None:
    assert answer_type(answer) == kind
    assert answer_text(answer) == text


def test_test_submissions_are_kept_but_left_out_of_the_summaries(harness: FullHarness) -> None:
    last = harness.now.date()
    assert harness.materialize(["forms"]).success
    assert harness.materialize(RESULTS, days=(last - timedelta(days=30), last)).success
    tests = harness.count("form_results", "test_result")
    real = harness.count("form_results", "NOT test_result")
    assert tests > 0 and real > 0
    summary = harness.query("SELECT sum(submissions) FROM spotler.form_response_summary")[0][0]
    assert summary == real
    # every value given counts once: each choice of a multiple-choice answer, unanswered none
    counted = harness.query(
        "SELECT sum(CASE a.answer_type WHEN 'list' THEN json_array_length(a.answer) ELSE 1 END) "
        "FROM spotler.form_answers a JOIN spotler.form_results r "
        "USING (form_id, form_result_id) WHERE NOT r.test_result AND a.answer_type <> 'null'"
    )[0][0]
    summed = harness.query("SELECT sum(answers) FROM spotler.form_answer_summary")[0][0]
    assert summed == counted > 0
    for table in ("forms", *RESULTS):
        assert harness.run_check(table, "primary_key_unique").passed
