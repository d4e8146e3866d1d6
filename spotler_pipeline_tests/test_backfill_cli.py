"""``spotler-pipeline backfill`` against a fake webserver (the real one: test_e2e_backfill)."""

from __future__ import annotations

import io
import json
from datetime import date
from typing import Any

import httpx
import pytest

from spotler_pipeline import cli
from spotler_pipeline.backfill import (
    BackfillError,
    BackfillRequest,
    DagsterWebserver,
    run_backfill,
)

NODES = [
    ("spotler/mailings", "mailings"),
    ("spotler/mailing_opens", "mailings"),
    ("spotler/mailing_stats_snapshots", "statistics"),
    ("spotler/forms", "forms"),
]


class FakeWebserver:
    """Answers the GraphQL the command sends; the backfill ends after ``ticks`` polls."""

    def __init__(self, *, ticks: int = 2, fail: bool = False) -> None:
        self.ticks, self.fail = ticks, fail
        self.launched: list[dict[str, Any]] = []
        self.polls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        query, variables = body["query"], body["variables"]
        if "assetNodes" in query:
            data: dict[str, Any] = {
                "assetNodes": [
                    {"assetKey": {"path": k.split("/")}, "groupName": g, "isPartitioned": True}
                    for k, g in NODES
                ]
            }
        elif "launchPartitionBackfill" in query:
            self.launched.append(variables["params"])
            data = {
                "launchPartitionBackfill": {
                    "__typename": "LaunchBackfillSuccess",
                    "backfillId": "bf1",
                }
            }
        elif "partitionBackfillOrError" in query:
            self.polls += 1
            done = self.polls > self.ticks
            status = (
                ("COMPLETED_FAILED" if self.fail else "COMPLETED_SUCCESS")
                if done
                else ("REQUESTED")
            )
            data = {
                "partitionBackfillOrError": {
                    "__typename": "PartitionBackfill",
                    "id": "bf1",
                    "status": status,
                    "numPartitions": 2,
                    "error": None,
                }
            }
        elif "runsOrError" in query:
            done = self.polls > self.ticks
            final = "FAILURE" if self.fail else "SUCCESS"
            statuses = [final, final] if done else ["SUCCESS", "STARTED"][: self.polls]
            data = {
                "runsOrError": {
                    "__typename": "Runs",
                    "results": [
                        {"runId": f"run{i}aaaaaa", "status": s, "tags": []}
                        for i, s in enumerate(statuses)
                    ],
                }
            }
        elif "logsForRun" in query:
            data = {
                "logsForRun": {
                    "__typename": "EventConnection",
                    "events": [
                        {
                            "__typename": "ExecutionStepFailureEvent",
                            "stepKey": "mailing_stats_snapshots",
                            "error": {"message": "Refusing snapshot partition(s) 2026-06-13\n..."},
                        }
                    ],
                }
            }
        else:
            raise AssertionError(query)
        return httpx.Response(200, json={"data": data})


def _server(fake: FakeWebserver) -> DagsterWebserver:
    client = httpx.Client(transport=httpx.MockTransport(fake))
    return DagsterWebserver("http://dagster.test", client=client)


def _run(fake: FakeWebserver, request: BackfillRequest) -> tuple[Any, str]:
    out = io.StringIO()
    outcome = run_backfill(_server(fake), request, out=out, poll_seconds=0, sleep=lambda _: None)
    return outcome, out.getvalue()


def test_a_group_over_a_range_is_one_backfill_followed_to_its_end() -> None:
    fake = FakeWebserver()
    outcome, printed = _run(
        fake, BackfillRequest(date(2026, 6, 13), date(2026, 6, 14), groups=["mailings"])
    )
    (params,) = fake.launched
    assert params["partitionNames"] == ["2026-06-13", "2026-06-14"]
    assert params["assetSelection"] == [
        {"path": ["spotler", "mailings"]},
        {"path": ["spotler", "mailing_opens"]},
    ]
    assert outcome.succeeded
    assert "requested; runs: 1 success" in printed
    assert "completed_success; runs: 2 success" in printed


def test_a_failed_backfill_names_the_step_and_its_message() -> None:
    fake = FakeWebserver(fail=True)
    outcome, _ = _run(
        fake,
        BackfillRequest(date(2026, 6, 13), date(2026, 6, 13), assets=["mailing_stats_snapshots"]),
    )
    assert fake.launched[0]["assetSelection"] == [{"path": ["spotler", "mailing_stats_snapshots"]}]
    assert not outcome.succeeded
    assert any("Refusing snapshot partition(s) 2026-06-13" in f for f in outcome.failures)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (BackfillRequest(date(2026, 6, 2), date(2026, 6, 1), groups=["mailings"]), "is before"),
        (BackfillRequest(date(2026, 6, 1), date(2026, 6, 1), groups=["nope"]), "no asset group"),
        (BackfillRequest(date(2026, 6, 1), date(2026, 6, 1), assets=["nope"]), "no asset"),
    ],
)
def test_bad_requests_are_refused_before_anything_is_launched(
    request_: BackfillRequest, message: str
) -> None:
    fake = FakeWebserver()
    with pytest.raises(BackfillError, match=message):
        _run(fake, request_)
    assert fake.launched == []


def test_the_command_line_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as usage:
        cli.main(["backfill", "--from", "2026-06-01", "--to", "2026-06-02"])
    assert usage.value.code == 2
    assert "--group and/or --assets" in capsys.readouterr().err
    unreachable = ["--url", "http://127.0.0.1:9", "--group", "mailings"]
    code = cli.main(["backfill", "--from", "2026-06-01", "--to", "2026-06-02", *unreachable])
    assert code == 2
    assert "cannot reach the Dagster webserver at http://127.0.0.1:9" in capsys.readouterr().err
