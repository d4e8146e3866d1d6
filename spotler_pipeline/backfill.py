"""``spotler-pipeline backfill``: a partition-range backfill through a running Dagster webserver.

The UI launches a backfill with the GraphQL mutation ``launchPartitionBackfill``; the daemon
then splits it into runs by each asset's backfill policy (up to 31 days per run here), orders
them by dependency and queues them for the DuckDB pool. This command does exactly that from
a shell, then follows the backfill to its end, printing its progress, and exits non-zero when
any of its runs failed. (``dagster asset materialize --partition-range`` / ``dg launch
--partition-range`` run in-process instead, and refuse assets whose backfill policy is not a
single run.)

Talks HTTP only (``httpx``): no Dagster import, so it starts at once.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, TextIO

import httpx

DEFAULT_URL = "http://127.0.0.1:3000"
URL_ENV_VAR = "DAGSTER_WEBSERVER_URL"
#: The setting of the first partition day (spotler_pipeline.defs.config reads it).
PARTITIONS_START_ENV_VAR = "SPOTLER_PARTITIONS_START"
#: Backfill states after which nothing more happens.
FINAL_STATUSES = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
FINISHED_RUN_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}

# The GraphQL this command sends, also what the end-to-end tests send (they import it from
# here: spotler_pipeline_tests/e2e_dagster.py). Checked against Dagster's schema by
# test_backfill_queries.py.

#: ``$withStats`` (default true) adds each asset's partition counts, as the UI shows them; the
#: command asks without them.
ASSET_NODES = """
query Assets($withStats: Boolean = true) {
  assetNodes {
    assetKey { path }
    groupName
    isPartitioned
    firstDay: partitionKeyConnection(limit: 1, ascending: true) { results }
    lastDay: partitionKeyConnection(limit: 1, ascending: false) { results }
    partitionStats @include(if: $withStats) {
      numMaterialized numPartitions numFailed numMaterializing
    }
  }
}
"""

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on UnauthorizedError { message }
    ... on PartitionSetNotFoundError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { stepKey invalidOutputName }
    ... on RunConflict { message }
  }
}
"""

STATUS = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { id status numPartitions error { message } }
    ... on PythonError { message }
    ... on BackfillNotFoundError { message }
  }
}
"""

RUNS = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs {
      results {
        runId jobName status startTime endTime tags { key value } assetSelection { path }
      }
    }
    ... on PythonError { message }
  }
}
"""

FAILURES = """
query Failures($runId: ID!) {
  logsForRun(runId: $runId) {
    __typename
    ... on EventConnection {
      events {
        __typename
        ... on ExecutionStepFailureEvent { stepKey error { message } }
        ... on RunFailureEvent { message }
      }
    }
  }
}
"""


class BackfillError(Exception):
    """The backfill could not be launched or followed (one line, for the terminal)."""


@dataclass(frozen=True)
class BackfillRequest:
    first: date
    last: date
    groups: Sequence[str] = ()
    assets: Sequence[str] = ()

    @property
    def days(self) -> list[str]:
        n = (self.last - self.first).days
        return [(self.first + timedelta(days=k)).isoformat() for k in range(n + 1)]


@dataclass
class Outcome:
    backfill_id: str
    status: str
    runs: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return (
            self.status in ("COMPLETED", "COMPLETED_SUCCESS")
            and not self.failures
            and set(self.runs) <= {"SUCCESS"}
        )


@dataclass(frozen=True)
class AssetNode:
    """An asset as the webserver describes it: its group, and its first and last partition
    (days ``YYYY-MM-DD``; None when it is not partitioned)."""

    group: str | None
    first_day: str | None = None
    last_day: str | None = None


def _only(connection: dict[str, Any] | None) -> str | None:
    results = (connection or {}).get("results") or []
    return str(results[0]) if results else None


def _error_message(response: httpx.Response) -> str:
    """The first line of what an HTTP error response says: GraphQL's ``errors[0].message``,
    a JSON ``message``, or the text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    message: Any = None
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            message = errors[0].get("message")
        message = message or body.get("message") or body.get("error")
    text = str(message or response.text).strip()
    first = text.splitlines()[0] if text else "(no message)"
    return first if len(first) <= 300 else first[:297] + "..."


class DagsterWebserver:
    """The webserver's GraphQL endpoint (the one the UI uses)."""

    def __init__(self, url: str, *, client: httpx.Client | None = None) -> None:
        self.url = url.rstrip("/")
        self._http = client or httpx.Client(timeout=60.0)

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = self._http.post(
                f"{self.url}/graphql", json={"query": query, "variables": variables or {}}
            )
        except httpx.HTTPError as exc:
            raise BackfillError(
                f"cannot reach the Dagster webserver at {self.url} ({exc}); start it with "
                "`make dev` or `dg dev`, or pass --url"
            ) from None
        if response.is_error:
            raise BackfillError(
                f"the Dagster webserver at {self.url} answered {response.status_code} "
                f"{response.reason_phrase}: {_error_message(response)}"
            )
        body = response.json()
        if body.get("errors"):
            raise BackfillError(f"GraphQL error: {body['errors'][0].get('message')}")
        return dict(body["data"])

    def asset_nodes(self) -> dict[str, AssetNode]:
        """``spotler/<table>`` -> its group and days, for every asset the webserver knows."""
        nodes = self.graphql(ASSET_NODES, {"withStats": False})["assetNodes"]
        return {
            "/".join(n["assetKey"]["path"]): AssetNode(
                n["groupName"], _only(n.get("firstDay")), _only(n.get("lastDay"))
            )
            for n in nodes
        }

    def launch(self, keys: Sequence[str], days: Sequence[str], tags: dict[str, str]) -> str:
        params = {
            "assetSelection": [{"path": k.split("/")} for k in keys],
            "partitionNames": list(days),
            "fromFailure": False,
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
        }
        result = self.graphql(LAUNCH, {"params": params})["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            detail = result.get("message") or result
            raise BackfillError(f"launchPartitionBackfill refused: {detail}")
        return str(result["backfillId"])

    def status(self, backfill_id: str) -> dict[str, Any]:
        data = self.graphql(STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        if data["__typename"] != "PartitionBackfill":
            raise BackfillError(f"backfill {backfill_id}: {data.get('message') or data}")
        return dict(data)

    def runs(self, backfill_id: str) -> list[dict[str, Any]]:
        run_filter = {"tags": [{"key": "dagster/backfill", "value": backfill_id}]}
        data = self.graphql(RUNS, {"filter": run_filter})["runsOrError"]
        if data["__typename"] != "Runs":
            raise BackfillError(f"runs of backfill {backfill_id}: {data.get('message')}")
        return list(data["results"])

    def failure_messages(self, run_id: str) -> list[str]:
        data = self.graphql(FAILURES, {"runId": run_id})["logsForRun"]
        messages = []
        for event in data.get("events") or []:
            if event["__typename"] == "ExecutionStepFailureEvent":
                error = (event.get("error") or {}).get("message", "").strip()
                messages.append(f"{event['stepKey']}: {error.splitlines()[0] if error else '?'}")
        return messages


def resolve_assets(nodes: dict[str, AssetNode], request: BackfillRequest) -> list[str]:
    """The asset keys a request names: every asset of each group, and each named asset
    (``mailings`` or ``spotler/mailings``)."""
    known_groups = sorted({n.group for n in nodes.values() if n.group})
    keys: list[str] = []
    for group in request.groups:
        members = [k for k, n in nodes.items() if n.group == group]
        if not members:
            raise BackfillError(f"no asset group {group!r}; groups: {', '.join(known_groups)}")
        keys.extend(members)
    for name in request.assets:
        key = name if "/" in name else f"spotler/{name}"
        if key not in nodes:
            raise BackfillError(f"no asset {key!r} in the code location")
        keys.append(key)
    return list(dict.fromkeys(keys))


def days_that_exist(
    nodes: Sequence[AssetNode], request: BackfillRequest
) -> tuple[list[str], str | None]:
    """The request's days that are partitions of every asset, and a line saying which days
    were left out (None when none were). Refuses a range with no such day."""
    firsts = [n.first_day for n in nodes if n.first_day]
    lasts = [n.last_day for n in nodes if n.last_day]
    if not firsts or not lasts:
        return request.days, None
    first, last = max(firsts), min(lasts)
    days = [d for d in request.days if first <= d <= last]
    exist = (
        f"partitions are the days {first} to {last} (the first set by "
        f"{PARTITIONS_START_ENV_VAR} on the webserver, the last today)"
    )
    if not days:
        raise BackfillError(
            f"none of the days {request.days[0]}..{request.days[-1]} exist: {exist}"
        )
    left_out = [
        text
        for text in (
            _span([d for d in request.days if d < first]),
            _span([d for d in request.days if d > last]),
        )
        if text
    ]
    if not left_out:
        return days, None
    return days, f"Skipping {' and '.join(left_out)}: {exist}"


def _span(days: Sequence[str]) -> str:
    if not days:
        return ""
    if len(days) == 1:
        return f"{days[0]} (1 day)"
    return f"{days[0]}..{days[-1]} ({len(days)} days)"


def run_backfill(
    server: DagsterWebserver,
    request: BackfillRequest,
    *,
    out: TextIO | None = None,
    poll_seconds: float = 2.0,
    timeout_seconds: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Launch the backfill, follow it to its end and return how it ended."""
    out = out or sys.stdout
    if request.last < request.first:
        raise BackfillError(f"--to {request.last} is before --from {request.first}")
    nodes = server.asset_nodes()
    keys = resolve_assets(nodes, request)
    days, skipped = days_that_exist([nodes[k] for k in keys], request)
    if skipped:
        print(skipped, file=out, flush=True)
    backfill_id = server.launch(keys, days, {"spotler/launched_by": "spotler-pipeline backfill"})
    started = clock()
    print(
        f"Backfill {backfill_id}: {len(keys)} assets x {len(days)} days "
        f"({days[0]}..{days[-1]}) on {server.url}/runs/b/{backfill_id}",
        file=out,
        flush=True,
    )
    last_line = ""
    while True:
        state = server.status(backfill_id)
        runs = server.runs(backfill_id)
        counts = Counter(r["status"] for r in runs)
        runs_text = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items())) or "none yet"
        line = f"{state['status'].lower()}; runs: {runs_text}"
        if line != last_line:
            print(f"[{clock() - started:5.0f}s] {line}", file=out, flush=True)
            last_line = line
        if state["status"] in FINAL_STATUSES and counts.keys() <= FINISHED_RUN_STATUSES:
            break
        if timeout_seconds is not None and clock() - started > timeout_seconds:
            raise BackfillError(
                f"backfill {backfill_id} still {state['status']} after {timeout_seconds:.0f}s "
                "(it goes on in the daemon; follow it in the UI)"
            )
        sleep(poll_seconds)
    outcome = Outcome(backfill_id, state["status"], counts)
    if state.get("error"):
        outcome.failures.append(state["error"]["message"].strip().splitlines()[0])
    for run in runs:
        if run["status"] != "SUCCESS":
            for message in server.failure_messages(run["runId"]) or [run["status"].lower()]:
                outcome.failures.append(f"run {run['runId'][:8]} {message}")
    return outcome


def main(args: Any, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """The ``spotler-pipeline backfill`` subcommand (arguments parsed by ``cli.py``)."""
    out, err = out or sys.stdout, err or sys.stderr
    server = DagsterWebserver(args.url or os.environ.get(URL_ENV_VAR) or DEFAULT_URL)
    request = BackfillRequest(args.first, args.last, args.group or (), args.assets or ())
    try:
        outcome = run_backfill(
            server, request, out=out, poll_seconds=args.poll, timeout_seconds=args.timeout
        )
    except BackfillError as exc:
        print(f"spotler-pipeline backfill: {exc}", file=err)
        return 2
    if outcome.succeeded:
        print(f"Backfill {outcome.backfill_id} succeeded.", file=out)
        return 0
    print(f"Backfill {outcome.backfill_id} ended {outcome.status}:", file=err)
    for failure in outcome.failures:
        print(f"  {failure}", file=err)
    return 1
