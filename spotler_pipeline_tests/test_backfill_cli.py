"""``spotler-pipeline backfill`` against a fake webserver (the real one: test_e2e_backfill)."""

from __future__ import annotations

import argparse
import http.server
import io
import json
import threading
from collections.abc import Iterator
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

#: The webserver's first and last partition (SPOTLER_PARTITIONS_START, today).
FIRST_LAST = ("2026-01-01", "2026-06-30")


class FakeWebserver:
    """Answers the GraphQL the command sends; the backfill ends after ``ticks`` polls."""

    def __init__(
        self, *, ticks: int = 2, fail: bool = False, days: tuple[str, str] = FIRST_LAST
    ) -> None:
        self.ticks, self.fail, self.days = ticks, fail, days
        self.launched: list[dict[str, Any]] = []
        self.polls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        query, variables = body["query"], body["variables"]
        if "assetNodes" in query:
            data: dict[str, Any] = {
                "assetNodes": [
                    {
                        "assetKey": {"path": k.split("/")},
                        "groupName": g,
                        "isPartitioned": True,
                        "firstDay": {"results": [self.days[0]]},
                        "lastDay": {"results": [self.days[1]]},
                    }
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


@pytest.mark.parametrize(
    ("first", "last", "launched", "said"),
    [
        (
            "2026-06-10",
            "2026-06-13",
            ["2026-06-12", "2026-06-13"],
            "Skipping 2026-06-10..2026-06-11 (2 days): partitions are the days 2026-06-12 to "
            "2026-06-14 (the first set by SPOTLER_PARTITIONS_START on the webserver, the last "
            "today)",
        ),
        (
            "2026-06-14",
            "2026-06-15",
            ["2026-06-14"],
            "Skipping 2026-06-15 (1 day): partitions are the days 2026-06-12 to 2026-06-14",
        ),
    ],
)
def test_a_range_crossing_the_first_or_last_day_is_clipped_saying_which_days(
    first: str, last: str, launched: list[str], said: str
) -> None:
    fake = FakeWebserver(days=("2026-06-12", "2026-06-14"))
    request = BackfillRequest(date.fromisoformat(first), date.fromisoformat(last), ["mailings"])
    outcome, printed = _run(fake, request)
    assert fake.launched[0]["partitionNames"] == launched
    assert printed.splitlines()[0].startswith(said)
    assert f"x {len(launched)} days" in printed.splitlines()[1]
    assert outcome.succeeded


def test_a_range_before_the_first_day_is_refused_in_one_line() -> None:
    fake = FakeWebserver(days=("2026-06-12", "2026-06-14"))
    with pytest.raises(BackfillError) as refused:
        _run(fake, BackfillRequest(date(2026, 6, 1), date(2026, 6, 2), groups=["mailings"]))
    assert fake.launched == []
    assert str(refused.value) == (
        "none of the days 2026-06-01..2026-06-02 exist: partitions are the days 2026-06-12 to "
        "2026-06-14 (the first set by SPOTLER_PARTITIONS_START on the webserver, the last today)"
    )


class _Failing(http.server.BaseHTTPRequestHandler):
    """A webserver that is up and answers every request 500, as Dagster's does on a bug."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps(
            {"errors": [{"message": "Exception: partition key out of range\n  File ..."}]}
        ).encode()
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def failing_webserver() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_http_error_says_what_the_webserver_answered_in_one_line(
    failing_webserver: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--from", "2026-06-01", "--to", "2026-06-02", "--group", "mailings"]
    assert cli.main(["backfill", *args, "--url", failing_webserver]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"spotler-pipeline backfill: the Dagster webserver at {failing_webserver} answered 500 "
        "Internal Server Error: Exception: partition key out of range\n"
    )


def test_every_command_and_option_is_explained_in_plain_text() -> None:
    """``--help`` reads as text (no reStructuredText backticks) and no option goes unexplained."""
    parser = cli.build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, command in {"spotler-pipeline": parser, **commands.choices}.items():
        assert "`" not in command.format_help(), name
        unexplained = [
            a.option_strings
            for a in command._actions
            if a.option_strings and not a.help and not isinstance(a, argparse._HelpAction)
        ]
        assert unexplained == [], name
