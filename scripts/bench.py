"""Benchmark of the pipeline as a user runs it: throughput, requests, memory, check cost.

    make bench                      # or: .venv/bin/python scripts/bench.py [--help]

One simulator (``spotler-pipeline simulate --seed 1 --scale 10``, its own process) serves a
generated account. Every contender runs in a fresh process whose whole process tree is polled
for resident memory. Four measurements:

1. **Send days** of ~1.3M and ~4.25M mailing interaction rows (recipients + opens + clicks +
   bounces), after a warm-up that fetches every page once (the simulator's generation is not
   measured):

   - ``floor``: every page fetched (same page size and concurrency as ours) and parsed with
     ``orjson.loads``, the result discarded: the physical limit of a Python client here;
   - ``ours``: ``dagster asset materialize -m spotler_pipeline --select <the four interaction
     assets> --partition DAY`` with the project's defaults (its executor, its checks) into a
     fresh DuckDB file, timed from command to exit; Dagster's start-up (command to run
     start), the step's fetch, write and checks are read from the run;
   - ``dlt``: dlt's ``rest_api`` source on the same endpoints (offset paging by ``after`` /
     ``pageSize``, the same page size, OAuth 1.0a through ``requests-oauthlib``, dlt's
     defaults otherwise) into DuckDB; the 1M day only.

2. **Daily refresh**: job ``spotler_mailings_refresh`` over the 30 send days ending on the
   simulator's today, as its schedule launches it (``dagster job execute`` with the range
   tags): once into an empty warehouse (first load), then again (the daily refresh: what
   changed since yesterday's is re-read). API requests and rows fetched of each.

3. **Checks on a large warehouse**: the refreshed warehouse, grown past ``--large-rows``
   interaction rows by copying its rows into earlier send days with DuckDB (synthetic
   mailings; generating them through the simulator takes minutes per 10M rows here), then
   one send day written as a user does (item 1's command); the checks in its step look at
   the day written. Beside it, job ``spotler_nightly_checks``: every check over every day,
   which is what each write ran before.

4. **Statistics snapshot at scale**: ``mailing_stats_snapshots`` for today against a small
   stand-in server listing ``--snapshot-mailings`` mailings in the lookback window, each
   statistics request answered after ``--snapshot-latency-ms``.

Console output and the full results (JSON) are written to ``bench_results/``. The last line
is ``rows_per_s=<n> vs_floor=<x> vs_dlt=<y> peak_rss_mb=<m>`` for the 4M day as a user runs
it: rows over the command's wall time, that wall time over the floor's, our rows/s over
dlt's (1M day), and the command's process tree's peak memory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
#: The code the Dagster commands run (``--code``: another checkout, e.g. the previous
#: release, for the before/after numbers); the tools (Dagster, DuckDB, dlt) are this venv's.
CODE = ROOT
BIN = Path(sys.executable).parent
TZ = ZoneInfo("Europe/Amsterdam")
PAGE_SIZE = 10_000
CONCURRENCY = 8  # SpotlerResource.max_concurrent_requests' default: the client's request cap
ENDPOINTS = {  # path suffix -> array field (and our table)
    "recipients": "recipients",
    "opens": "opens",
    "clicks": "clicks",
    "bounces": "bounces",
}
# The send day's mailings (endpoints 1-2) and their interactions: what the mailings group
# loads for a day (its checks look for every row's mailing in spotler.mailings).
ASSETS = ",".join(
    ["spotler/mailings", "spotler/mailing_links", *(f"spotler/mailing_{k}" for k in ENDPOINTS)]
)
STEP = "spotler_mailing_interactions"  # the multi-asset's step (its checks run inside it)
REFRESH_JOB = "spotler_mailings_refresh"
NIGHTLY_JOB = "spotler_nightly_checks"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
INTERACTION_TABLES = [f"mailing_{kind}" for kind in ENDPOINTS]

# With --seed 1 --scale 10 --now 2025-06-01T12:00:00+02:00 (all interactions mature):
SMALL_DAY = "2025-04-05"  # 1 mailing, ~1.27M interaction rows
LARGE_DAY = "2025-04-09"  # 3 mailings, ~4.25M interaction rows
REFRESH_DAYS = 30  # the daily refresh's window (SPOTLER_INTERACTION_REFRESH_DAYS' default)
LARGE_ROWS = 50_000_000  # interaction rows the large warehouse holds at least


# -- measuring a process tree -----------------------------------------------------------


@dataclass
class Run:
    """One measured process: wall time, peak RSS and CPU time of its tree, and what it
    reported."""

    name: str
    day: str
    wall_s: float
    peak_rss_mb: float
    returncode: int
    report: dict[str, Any] = field(default_factory=dict)
    output_tail: str = ""
    started_at: float = 0.0  # epoch seconds when the process was started
    #: user + system CPU seconds of the process and the descendants it waited for
    cpu_s: float = 0.0


def tree_rss(pid: int) -> tuple[int, int]:
    """Resident memory (bytes, summed) of process ``pid`` and all its descendants, and how
    many processes that is; (0, 0) once it is gone."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0, 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total, len(procs)


def measure(name: str, day: str, argv: Sequence[str], env: dict[str, str]) -> Run:
    """Run ``argv`` and poll the resident memory of its whole process tree every 20 ms; its
    CPU time is the kernel's account when it exits (``wait4``).

    The command's stdout is expected to end with one JSON line (its own report), unless
    it is the Dagster CLI, whose output is kept for the error message only.
    """

    started = time.perf_counter()
    started_at = time.time()
    proc = subprocess.Popen(
        list(argv), env=env, cwd=CODE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    peak = 0
    out: list[bytes] = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        total, _ = tree_rss(proc.pid)
        peak = max(peak, total)
        time.sleep(0.02)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    text = b"".join(out).decode(errors="replace")
    report: dict[str, Any] = {}
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            try:
                report = json.loads(line)
            except json.JSONDecodeError:
                continue
            break
    cpu = usage.ru_utime + usage.ru_stime
    return Run(
        name, day, wall, peak / 2**20, proc.returncode, report, text[-3000:], started_at, cpu
    )


# -- the simulator ----------------------------------------------------------------------


class SimulatorProcess:
    def __init__(self, seed: int, scale: float, now: str) -> None:
        self.argv = [
            str(BIN / "spotler-pipeline"),
            "simulate",
            "--seed",
            str(seed),
            "--scale",
            str(scale),
            "--now",
            now,
        ]
        self.env: dict[str, str] = {}

    def __enter__(self) -> SimulatorProcess:
        self.proc = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.proc.stdout is not None
        while len(self.env) < 3:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("the simulator exited before printing its settings")
            key, _, value = line.strip().removeprefix("export ").partition("=")
            if key.startswith("SPOTLER_"):
                self.env[key] = value
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# -- floor: fetch + orjson.loads (also the warm-up) ---------------------------------------


def _signed_get(base_url: str, key: str, secret: str) -> Callable[[str, dict[str, Any]], bytes]:
    import httpx
    from oauthlib.oauth1 import Client

    signer = Client(key, client_secret=secret)
    http = httpx.Client(
        timeout=120,
        limits=httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY),
    )

    def get(path: str, params: dict[str, Any]) -> bytes:
        url = str(httpx.URL(base_url + path, params=params))
        signed, headers, _ = signer.sign(url, headers={"Accept": "application/json"})
        response = http.get(signed, headers=headers)
        response.raise_for_status()
        return response.content

    return get


def mailings_of(get: Callable[[str, dict[str, Any]], bytes], day: str) -> list[dict[str, Any]]:
    import orjson

    start = date.fromisoformat(day)
    params = {
        "fromDate": f"{start}T00:00:00",
        "toDate": f"{start + timedelta(days=1)}T00:00:00",
    }
    mailings = orjson.loads(get("/mailing", params))
    return [m for m in mailings if _local_day(m["scheduledStartDate"]) == start]


def _local_day(text: str) -> date:
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo is None else moment.astimezone(TZ)).date()


def floor(base_url: str, key: str, secret: str, day: str) -> dict[str, Any]:
    """Every interaction page of the day's mailings, parsed by orjson and thrown away."""
    import orjson

    get = _signed_get(base_url, key, secret)
    started = time.perf_counter()
    requests = 1
    mailings = mailings_of(get, day)

    def stream(task: tuple[str, str]) -> tuple[int, int, int]:
        """One report, page by page: ``after`` advances by the rows received, and only an
        empty page or an absent/empty ``paging.next`` ends it (never a short page)."""
        mailing_id, kind = task
        rows = pages = size = 0
        while True:
            body = get(f"/mailing/{mailing_id}/{kind}", {"after": rows, "pageSize": PAGE_SIZE})
            data = orjson.loads(body)
            n = len(data[ENDPOINTS[kind]])
            more = _has_next(data)
            rows, pages, size = rows + n, pages + 1, size + len(body)
            del data
            if n == 0 or not more:
                return rows, pages, size

    tasks = [(m["encryptedId"], kind) for m in mailings for kind in ENDPOINTS]
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        results = list(pool.map(stream, tasks))
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": sum(r for r, _, _ in results),
        "requests": requests + sum(p for _, p, _ in results),
        "bytes": sum(s for _, _, s in results),
        "mailings": len(mailings),
    }


def _has_next(data: Any) -> bool:
    """Whether a parsed page says more follows: a present, non-empty ``paging.next``."""
    paging = data.get("paging") if isinstance(data, dict) else None
    return isinstance(paging, dict) and bool(paging.get("next"))


def inject_short_pages(base_url: str, max_rows: int) -> list[dict[str, Any]]:
    """Make the simulator behind ``base_url`` cap every paged answer at ``max_rows`` records
    (its ``short_pages`` fault, for good), through its admin endpoint: the benchmark's
    simulator runs in its own process. Returns the simulator's active faults."""
    import httpx

    url = httpx.URL(base_url)
    admin = str(url.copy_with(raw_path=b"/_simulator/faults", query=None))
    spec = {"kind": "short_pages", "max_rows": max_rows, "times": None}
    response = httpx.post(admin, json=[spec], timeout=30)
    response.raise_for_status()
    return response.json()


# -- ours: the Dagster CLI, as a user runs it ---------------------------------------------


def dagster_env(sim_env: dict[str, str], work: Path, **extra: str) -> dict[str, str]:
    """A fresh ``DAGSTER_HOME`` under ``work`` and the warehouse file ``work/spotler.duckdb``."""
    home = work / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return {
        **os.environ,
        **sim_env,
        "DAGSTER_HOME": str(home),
        "SPOTLER_DUCKDB_PATH": str(work / "spotler.duckdb"),
        **({"PYTHONPATH": str(CODE)} if CODE != ROOT else {}),
        **extra,
    }


def dagster(*args: str) -> list[str]:
    return [str(BIN / "dagster"), *args]


def ours(sim_env: dict[str, str], day: str, work: Path, name: str = "ours") -> Run:
    """One send day's interactions, the way a user runs it: the CLI with the defaults."""
    env = dagster_env(sim_env, work)
    argv = dagster(
        "asset", "materialize", "-m", "spotler_pipeline", "--select", ASSETS, "--partition", day
    )
    run = measure(name, day, argv, env)
    if run.returncode == 0:
        run.report = run_report(Path(env["DAGSTER_HOME"]), run)
        run.report["rows"] = sum(table_rows(work / "spotler.duckdb", INTERACTION_TABLES).values())
    return run


def run_report(home: Path, run: Run) -> dict[str, Any]:
    """What the run recorded: Dagster's start-up (command to run start), each step's time,
    API requests, rows written per table, the fetch and write of the interactions step and
    the checks evaluated (their own time, failures)."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        (record,) = instance.get_run_records(limit=1)
        run_id = record.dagster_run.run_id
        steps = {
            s.step_key: (s.end_time or 0) - (s.start_time or 0)
            for s in instance.get_run_step_stats(run_id)
        }
        requests: dict[str, int] = {}
        rows: dict[str, int] = {}
        interaction_meta: dict[str, Any] = {}
        checks: list[dict[str, Any]] = []
        fetched: dict[str, int] = {}
        requests_before_write = 0
        failure = ""
        for entry in instance.all_logs(run_id):
            event = entry.dagster_event
            message = entry.user_message or ""
            if event is None:
                # what the interactions step fetched, said before it writes
                if message.startswith("Fetched in "):
                    for table, n in re.findall(r"(?:^|[;,] )([a-z][a-z_]+): ([\d,]+)", message):
                        fetched[table] = fetched.get(table, 0) + int(n.replace(",", ""))
                found = re.match(r"([\d,]+) API requests so far", message)
                if found:
                    requests_before_write = int(found.group(1).replace(",", ""))
                continue
            if event.is_step_failure and not failure:
                error = event.step_failure_data.error  # type: ignore[union-attr]
                while error is not None and error.cause is not None:
                    error = error.cause
                failure = f"{event.step_key}: " + (error.message if error else "").splitlines()[0]
                continue
            if event.event_type_value == "ASSET_MATERIALIZATION":
                materialization = event.event_specific_data.materialization  # type: ignore[union-attr]
                table = materialization.asset_key.path[-1]
                meta = {k: v.value for k, v in materialization.metadata.items()}
                if table in rows:  # a range run reports each partition: count the table once
                    continue
                rows[table] = int(meta.get("rows_written", 0))
                if event.step_key and "api_requests" in meta:
                    requests[event.step_key] = int(meta["api_requests"])
                if table == "mailing_recipients":
                    interaction_meta = meta
            elif event.event_type_value == "ASSET_CHECK_EVALUATION":
                evaluation = event.event_specific_data
                meta = {k: v.value for k, v in evaluation.metadata.items()}  # type: ignore[union-attr]
                checks.append(
                    {
                        "table": evaluation.asset_key.path[-1],  # type: ignore[union-attr]
                        "check": evaluation.check_name,  # type: ignore[union-attr]
                        "passed": evaluation.passed,  # type: ignore[union-attr]
                        "seconds": meta.get("seconds"),
                        "checked": meta.get("checked"),
                    }
                )
    own = [c for c in checks if c["check"] != "freshness_check"]
    return {
        "run_seconds": (record.end_time or 0) - (record.start_time or 0),
        "startup_seconds": (record.start_time or run.started_at) - run.started_at,
        "steps": steps,
        "seconds": steps.get(STEP, 0.0),
        "fetch_seconds": interaction_meta.get("fetch_seconds"),
        "write_seconds": interaction_meta.get("write_seconds"),
        "check_seconds": sum(c["seconds"] or 0 for c in own),
        "checks": len(own),
        "checks_failed": [f"{c['table']}.{c['check']}" for c in own if not c["passed"]],
        "check_list": own,
        "requests": sum(requests.values()),
        "requests_by_step": requests,
        "rows_written": rows,
        "mailings_recipients_complete_kept": interaction_meta.get(
            "mailings_recipients_complete_kept"
        ),
        "fetched_before_write": fetched,
        "requests_before_write": requests_before_write,
        "failure": failure,
    }


def table_rows(database: Path, tables: Sequence[str]) -> dict[str, int]:
    from spotler_pipeline.warehouse.connection import open_warehouse

    conn = open_warehouse(database, read_only=True)
    try:
        return {
            t: int(conn.execute(f"SELECT count(*) FROM spotler.{t}").fetchone()[0])  # type: ignore[index]
            for t in tables
        }
    finally:
        conn.close()


# -- the daily refresh --------------------------------------------------------------------


def refresh(sim_env: dict[str, str], work: Path, first: str, last: str, name: str) -> Run:
    """The mailing refresh job over ``first..last``, as its schedule launches it."""
    env = dagster_env(sim_env, work)
    tags = json.dumps({RANGE_START_TAG: first, RANGE_END_TAG: last})
    argv = dagster("job", "execute", "-m", "spotler_pipeline", "-j", REFRESH_JOB, "--tags", tags)
    run = measure(name, f"{first}..{last}", argv, env)
    run.report = run_report(Path(env["DAGSTER_HOME"]), run)
    run.report["seconds"] = run.wall_s
    if run.returncode == 0:
        run.report["rows"] = sum(run.report["rows_written"].values())
    return run


# -- the large warehouse ------------------------------------------------------------------


def grow_warehouse(database: Path, target: int, say: Callable[[str], None]) -> dict[str, Any]:
    """Copy stored send days, newest first, into the days before the stored ones (synthetic
    mailing ids ``<id>~<k>``, with their mailings and links) until the interaction tables
    hold ``target`` rows; then publish, as a write does."""
    from spotler_pipeline.warehouse.connection import open_warehouse
    from spotler_pipeline.warehouse.publish import publish_snapshot

    started = time.perf_counter()
    conn = open_warehouse(database, config={"memory_limit": "1GB"})
    try:
        conn.execute("SET enable_progress_bar = false")
        count = " + ".join(f"(SELECT count(*) FROM spotler.{t})" for t in INTERACTION_TABLES)
        rows = int(conn.execute(f"SELECT {count}").fetchone()[0])  # type: ignore[index]
        days = [
            d
            for (d,) in conn.execute(
                "SELECT DISTINCT send_day FROM spotler.mailings ORDER BY send_day DESC"
            ).fetchall()
        ]
        span = (days[0] - days[-1]).days + 1
        copies = 0
        while rows < target:
            copies += 1
            for day in days:
                shift = span * copies
                for table, key in (("mailings", "encrypted_id"), ("mailing_links", "mailing_id")):
                    conn.execute(
                        f"INSERT INTO spotler.{table} SELECT * REPLACE (send_day - {shift} AS "
                        f"send_day, {key} || '~{copies}' AS {key}) FROM spotler.{table} "
                        "WHERE send_day = ?",
                        [day],
                    )
                for table in INTERACTION_TABLES:
                    inserted = conn.execute(
                        f"INSERT INTO spotler.{table} SELECT * REPLACE (send_day - {shift} AS "
                        f"send_day, mailing_id || '~{copies}' AS mailing_id) FROM "
                        f"spotler.{table} WHERE send_day = ?",
                        [day],
                    ).fetchone()
                    rows += int(inserted[0]) if inserted else 0  # type: ignore[index]
                if rows >= target:
                    break
            say(f"#   copy {copies}: {rows:,} interaction rows")
        publish_snapshot(conn, database)
    finally:
        conn.close()
    return {
        "rows": rows,
        "copies": copies,
        "seconds": time.perf_counter() - started,
        "megabytes": database.stat().st_size / 2**20,
    }


def last_send_day(database: Path, before: str) -> str:
    from spotler_pipeline.warehouse.connection import open_warehouse

    conn = open_warehouse(database, read_only=True)
    try:
        row = conn.execute(
            "SELECT max(send_day) FROM spotler.mailings WHERE send_day <= ? "
            "AND encrypted_id NOT LIKE '%~%'",
            [date.fromisoformat(before)],
        ).fetchone()
    finally:
        conn.close()
    return row[0].isoformat()  # type: ignore[index]


def nightly(sim_env: dict[str, str], work: Path) -> Run:
    """Job ``spotler_nightly_checks``: every check over every day (what each write ran
    before); reported as the time of the interaction tables' checks."""
    env = dagster_env(sim_env, work)
    argv = dagster("job", "execute", "-m", "spotler_pipeline", "-j", NIGHTLY_JOB)
    run = measure("nightly", "all days", argv, env)
    if run.returncode == 0:
        report = run_report(Path(env["DAGSTER_HOME"]), run)
        run.report = report
        run.report["seconds"] = run.wall_s
        run.report["rows"] = 0
    return run


# -- statistics snapshots at scale --------------------------------------------------------


class SnapshotServer:
    """A stand-in for Spotler's endpoints 1 and 3 only: ``count`` mailings sent over the
    last ``days`` days (real time), and each one's statistics after ``latency`` seconds."""

    def __init__(self, count: int, days: int, latency: float) -> None:
        import http.server

        now = datetime.now(TZ)
        self.mailings = [
            {
                "encryptedId": f"bench-mailing-{i:05d}",
                "name": f"Mailing {i}",
                "scheduledStartDate": (now - timedelta(days=days * (i + 0.5) / count)).strftime(
                    "%Y-%m-%dT%H:%M:%S"
                ),
                "type": "EMAIL",
                "sentCount": 1000 + i,
            }
            for i in range(count)
        ]
        self.requests = 0
        server = self
        lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body in one segment, sent at once: written apart, Nagle's
            # algorithm and the client's delayed ACK held each answer ~40 ms
            disable_nagle_algorithm = True
            wbufsize = 1 << 16

            def do_GET(self) -> None:  # noqa: N802
                with lock:
                    server.requests += 1
                path = self.path.split("?", 1)[0]
                if path.endswith("/statistics"):
                    time.sleep(latency)
                    sent = 1000 + int(path.rsplit("/", 2)[-2].rsplit("-", 1)[-1])
                    body: Any = {"sentCount": sent, "acceptedCount": sent - 10, "openCount": 300}
                elif path.endswith("/mailing"):
                    body = server.mailings
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> SnapshotServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()

    @property
    def env(self) -> dict[str, str]:
        host, port = self.httpd.server_address[:2]
        return {
            "SPOTLER_BASE_URL": f"http://{host}:{port}/integrationservice-1.1.0",
            "SPOTLER_CONSUMER_KEY": "bench-snapshot",
            "SPOTLER_CONSUMER_SECRET": "bench-snapshot-secret",
        }


def snapshots(count: int, latency_ms: float, work: Path) -> Run:
    """Today's statistics snapshot of ``count`` mailings, as a user runs it."""
    today = datetime.now(TZ).date().isoformat()
    with SnapshotServer(count, 59, latency_ms / 1000) as server:
        env = dagster_env(server.env, work)
        argv = dagster(
            "asset", "materialize", "-m", "spotler_pipeline",
            "--select", "spotler/mailing_stats_snapshots", "--partition", today,
        )  # fmt: skip
        run = measure("snapshot", today, argv, env)
        served = server.requests
    if run.returncode == 0:
        run.report = run_report(Path(env["DAGSTER_HOME"]), run)
        run.report["seconds"] = run.report["steps"].get("spotler__mailing_stats_snapshots", 0.0)
        run.report["rows"] = run.report["rows_written"].get("mailing_stats_snapshots", 0)
        run.report["requests_served"] = served
    return run


# -- dlt's rest_api source --------------------------------------------------------------


def dlt_run(
    base_url: str, key: str, secret: str, day: str, work: str, follow_next: bool = False
) -> dict[str, Any]:
    import dlt
    import requests
    from dlt.common.configuration import configspec
    from dlt.sources.helpers.rest_client.auth import AuthConfigBase
    from dlt.sources.rest_api import rest_api_source
    from requests_oauthlib import OAuth1

    counter = {"requests": 0}

    @configspec
    class OAuth1OneLegged(AuthConfigBase):
        """OAuth 1.0a, two-legged (consumer key and secret), signed by requests-oauthlib."""

        consumer_key: str = None  # type: ignore[assignment]
        consumer_secret: str = None  # type: ignore[assignment]

        def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
            counter["requests"] += 1
            return OAuth1(self.consumer_key, client_secret=self.consumer_secret)(request)

    start = date.fromisoformat(day)
    child: dict[str, Any] = {
        "data_selector": None,
        "paginator": {
            "type": "offset",
            "limit": PAGE_SIZE,
            "offset_param": "after",
            "limit_param": "pageSize",
            "total_path": None,
        },
    }
    if follow_next:
        # Pages capped below pageSize: dlt's offset paginator steps ``after`` by ``limit``
        # and would skip rows; follow the server's own ``paging.next`` instead.
        child = {
            "data_selector": None,
            "params": {"pageSize": PAGE_SIZE},
            "paginator": {"type": "json_link", "next_url_path": "paging.next"},
        }
    resources: list[Any] = [
        {
            "name": "mailings",
            "endpoint": {
                "path": "mailing",
                "params": {
                    "fromDate": f"{start}T00:00:00",
                    "toDate": f"{start + timedelta(days=1)}T00:00:00",
                },
                "paginator": "single_page",
            },
        }
    ]
    for kind, array_field in ENDPOINTS.items():
        resources.append(
            {
                "name": f"mailing_{kind}",
                "endpoint": {
                    **child,
                    "data_selector": array_field,
                    "path": f"mailing/{{resources.mailings.encryptedId}}/{kind}",
                },
            }
        )
    source = rest_api_source(
        {
            "client": {
                "base_url": base_url + "/",
                "auth": OAuth1OneLegged(consumer_key=key, consumer_secret=secret),
                "headers": {"Accept": "application/json"},
            },
            "resources": resources,
        }
    )
    pipeline = dlt.pipeline(
        pipeline_name="spotler_bench",
        pipelines_dir=os.path.join(work, "pipelines"),
        destination=dlt.destinations.duckdb(os.path.join(work, "dlt.duckdb")),
        dataset_name="spotler",
    )
    started = time.perf_counter()
    pipeline.run(source)
    seconds = time.perf_counter() - started
    with pipeline.sql_client() as client:
        rows = {
            kind: client.execute_sql(f"SELECT count(*) FROM mailing_{kind}")[0][0]
            for kind in ENDPOINTS
        }
    return {
        "seconds": seconds,
        "rows": sum(rows.values()),
        "rows_by_table": rows,
        "requests": counter["requests"],
    }


# -- the driver -------------------------------------------------------------------------


def worker(args: argparse.Namespace) -> None:
    """Runs inside a measured process: one contender, one day; prints its report as JSON."""
    base_url, key, secret = (
        os.environ["SPOTLER_BASE_URL"],
        os.environ["SPOTLER_CONSUMER_KEY"],
        os.environ["SPOTLER_CONSUMER_SECRET"],
    )
    if args.worker == "floor":
        report = floor(base_url, key, secret, args.day)
    else:
        report = dlt_run(
            base_url, key, secret, args.day, args.work, follow_next=bool(args.short_pages)
        )
    print(json.dumps(report), flush=True)


class Console:
    def __init__(self, path: Path) -> None:
        self.file = path.open("w")

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)
        self.file.write(text + "\n")
        self.file.flush()


def rate(rows: int, seconds: float) -> float:
    return rows / seconds if seconds > 0 else 0.0


def line(run: Run) -> str:
    """One contender's numbers: rows, its own time (the floor's and dlt's fetch, our whole
    command), rows/s, peak memory of the process tree, requests, and the CPU time of the
    whole process (start-up included) with the cores it kept busy on average."""
    r = run.report
    own = run.wall_s if run.name.startswith("ours") else r.get("seconds", float("nan"))
    busy = run.cpu_s / run.wall_s if run.wall_s > 0 else 0.0
    return (
        f"  {run.name:8} {r.get('rows', 0):>11,} rows  {own:7.2f} s  "
        f"{rate(r.get('rows', 0), own):>9,.0f} rows/s  peak RSS {run.peak_rss_mb:5.0f} MB  "
        f"{r.get('requests')} requests  CPU {run.cpu_s:.1f} s ({busy:.1f} cores)"
    )


def breakdown(run: Run) -> str:
    """Where a Dagster command's wall time went."""
    r = run.report
    fetch, write = r.get("fetch_seconds") or 0.0, r.get("write_seconds") or 0.0
    other = run.wall_s - r["startup_seconds"] - r["run_seconds"]
    failed = f", FAILED: {', '.join(r['checks_failed'])}" if r.get("checks_failed") else ""
    return (
        f"           start-up {r['startup_seconds']:.2f} s, run {r['run_seconds']:.2f} s "
        f"(step {r['seconds']:.2f} s: fetch {fetch:.2f} + write {write:.2f} + "
        f"{r['checks']} checks {r['check_seconds']:.2f} s{failed}), exit {other:.2f} s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=float, default=10.0)
    parser.add_argument("--now", default="2025-06-01T12:00:00+02:00")
    parser.add_argument("--small-day", default=SMALL_DAY, help="the ~1M-row send day")
    parser.add_argument("--large-day", default=LARGE_DAY, help="the ~4M-row send day")
    parser.add_argument("--skip-dlt", action="store_true", help="leave dlt out (quicker)")
    parser.add_argument(
        "--skip-refresh",
        action="store_true",
        help="leave out the 30-day refresh and the large warehouse (the simulator then "
        "generates 2 days, not 30: ~2 GB of memory instead of ~12 GB, minutes less)",
    )
    parser.add_argument(
        "--items",
        type=_items,
        default="1,2,3,4",
        help="which measurements to run, e.g. '1' (send days) or '2' (the daily refresh "
        "alone); 3 needs 2. Default: all four",
    )
    parser.add_argument("--large-rows", type=int, default=LARGE_ROWS)
    parser.add_argument("--snapshot-mailings", type=int, default=5000)
    parser.add_argument("--snapshot-latency-ms", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=1, help="runs of floor and ours per day")
    parser.add_argument("--out", default=str(ROOT / "bench_results"))
    parser.add_argument(
        "--short-pages",
        type=_positive,
        metavar="N",
        help="the simulator serves at most N records a page (paging.next still points on)",
    )
    parser.add_argument(
        "--code",
        type=Path,
        help="run the Dagster commands on this checkout's spotler_pipeline instead (e.g. "
        "`git archive <release> | tar -x -C DIR`) for before/after numbers",
    )
    parser.add_argument("--worker", choices=["floor", "dlt"], help=argparse.SUPPRESS)
    parser.add_argument("--day", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.skip_refresh:
        args.items -= {2, 3}
    if 3 in args.items:
        args.items.add(2)
    if args.worker:
        worker(args)
        return 0
    global CODE
    CODE = (args.code or ROOT).resolve()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    say = Console(out / f"bench-{stamp}.txt")
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    say(
        f"# spotler_pipeline benchmark {stamp} on {platform.node()} ({os.cpu_count()} cores, "
        f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the start)"
    )
    if CODE != ROOT:
        say(f"# code: {CODE} (not this checkout)")
    say(
        f"# simulator: spotler-pipeline simulate --seed {args.seed} --scale {args.scale} "
        f"--now {args.now} (own process); pageSize {PAGE_SIZE}, {CONCURRENCY} requests in flight"
    )
    days = {"1M": args.small_day, "4M": args.large_day}
    results: dict[str, Any] = {"settings": vars(args) | {"page_size": PAGE_SIZE}, "runs": []}
    runs: list[Run] = []
    with (
        SimulatorProcess(args.seed, args.scale, args.now) as sim,
        tempfile.TemporaryDirectory(prefix="spotler-bench-") as tmp,
    ):
        env = {**os.environ, **sim.env}
        base = [sys.executable, str(Path(__file__).resolve())]
        if args.short_pages:
            inject_short_pages(sim.env["SPOTLER_BASE_URL"], args.short_pages)
            say(f"# short pages: the simulator serves at most {args.short_pages:,} records a page")
            base += ["--short-pages", str(args.short_pages)]
        if 1 in args.items:
            say("# warming the simulator (every page of both days, unmeasured) ...")
        warm_started = time.perf_counter()
        warm_rows: dict[str, int] = {}
        for day in days.values() if 1 in args.items else ():
            w = floor(sim.env["SPOTLER_BASE_URL"], *_credentials(sim.env), day)
            warm_rows[day] = w["rows"]
            say(
                f"#   {day}: {w['rows']:,} rows in {w['mailings']} mailings, "
                f"{w['requests']} requests"
            )
        if 1 in args.items:
            say(f"# warmed in {time.perf_counter() - warm_started:.1f} s")
            send_days(args, sim.env, env, base, days, warm_rows, tmp, runs, say)

        if 2 in args.items:
            results["refresh"], results["large"] = refresh_and_large(args, sim.env, tmp, say)
            runs.extend(results["refresh"].pop("runs") + results["large"].pop("runs"))

    if 4 in args.items:
        runs.append(snapshot_item(args, say))
    results["runs"] = [asdict(r) | {"output_tail": r.output_tail[-500:]} for r in runs]
    json_path = out / f"bench-{stamp}.json"
    if 1 not in args.items:
        json_path.write_text(json.dumps(results, indent=2, default=str))
        say(f"# results: {json_path}")
        return 0

    summary = summarise(runs, days)
    results["summary"] = summary
    say("\n## ratios (the 4M day as a user runs it)")
    big = summary["4M"]
    for size in days:
        s = summary[size]
        target = 2 * s["fetch_write_seconds"] + s["startup_seconds"]
        say(
            f"  {size}: command {s['ours_seconds']:.2f} s = {s['ours_vs_floor']:.2f}x the floor "
            f"({s['floor_seconds']:.2f} s); target <= 2 x (fetch + write) + start-up = "
            f"2 x {s['fetch_write_seconds']:.2f} + {s['startup_seconds']:.2f} = {target:.2f} s: "
            + ("met" if s["ours_seconds"] <= target else "NOT met")
            + f"; peak RSS {s['ours_peak_rss_mb']:.0f} MB"
            + (" (< 400 MB)" if s["ours_peak_rss_mb"] < 400 else " (NOT < 400 MB)")
            + f"; CPU {s['ours_cpu_seconds']:.1f} s, "
            f"{s['ours_cpu_seconds'] / s['ours_seconds']:.1f} of the {os.cpu_count()} cores busy"
        )
    if summary.get("dlt_rows_per_s"):
        say(
            f"  dlt: {summary['dlt_rows_per_s']:,.0f} rows/s on the 1M day; ours (4M day, whole "
            f"command) / dlt = {summary['vs_dlt']:.1f}x"
            + (" (>= 30x)" if summary["vs_dlt"] >= 30 else " (NOT >= 30x)")
        )
    json_path.write_text(json.dumps(results, indent=2, default=str))
    shutil.copyfile(json_path, out / "latest.json")
    say(f"# results: {json_path}")
    vs_dlt = f"{summary['vs_dlt']:.1f}" if summary.get("vs_dlt") else "n/a"
    say(
        f"rows_per_s={big['ours_rows_per_s']:.0f} vs_floor={big['ours_vs_floor']:.2f} "
        f"vs_dlt={vs_dlt} peak_rss_mb={big['ours_peak_rss_mb']:.0f}"
    )
    return 0


def send_days(
    args: argparse.Namespace,
    sim_env: dict[str, str],
    env: dict[str, str],
    base: list[str],
    days: dict[str, str],
    warm_rows: dict[str, int],
    tmp: str,
    runs: list[Run],
    say: Callable[[str], None],
) -> None:
    """Item 1: each send day as the floor, as a user runs it, and (the 1M day) with dlt."""
    say("\n## 1. send days, as a user runs them")
    say(f"#   ours: dagster asset materialize -m spotler_pipeline --select {ASSETS} "
        "--partition DAY (the project's defaults)")  # fmt: skip
    for size, day in days.items():
        say(f"\n### {size}: send day {day}")
        for i in range(args.repeat):
            floor_run = measure("floor", day, [*base, "--worker", "floor", "--day", day], env)
            _check(floor_run)
            say(line(floor_run))
            _rows_note(say, floor_run, warm_rows[day])
            runs.append(floor_run)
            work = Path(tmp) / f"ours-{size}-{i}"
            ours_run = ours(sim_env, day, work)
            _check(ours_run)
            say(line(ours_run))
            say(breakdown(ours_run))
            _rows_note(say, ours_run, warm_rows[day])
            runs.append(ours_run)
            shutil.rmtree(work, ignore_errors=True)
        if size == "1M" and not args.skip_dlt:
            work = Path(tmp) / "dlt"
            work.mkdir()
            dlt_args = ["--worker", "dlt", "--day", day, "--work", str(work)]
            dlt_result = measure("dlt", day, [*base, *dlt_args], env)
            _check(dlt_result)
            say(line(dlt_result))
            _rows_note(say, dlt_result, warm_rows[day])
            runs.append(dlt_result)
            shutil.rmtree(work, ignore_errors=True)


def snapshot_item(args: argparse.Namespace, say: Callable[[str], None]) -> Run:
    """Item 4: a statistics snapshot of ``--snapshot-mailings`` mailings."""
    work = Path(tempfile.mkdtemp(prefix="spotler-bench-snapshot-"))
    say(f"\n## 4. statistics snapshot of {args.snapshot_mailings:,} mailings")
    say(
        f"#   a stand-in server lists them and answers each statistics request after "
        f"{args.snapshot_latency_ms:g} ms; dagster asset materialize --select "
        "spotler/mailing_stats_snapshots --partition TODAY"
    )
    snap = snapshots(args.snapshot_mailings, args.snapshot_latency_ms, work)
    shutil.rmtree(work, ignore_errors=True)
    _check(snap)
    say(line(snap))
    say(
        f"           command {snap.wall_s:.2f} s, the asset's step {snap.report['seconds']:.2f} s "
        f"for {snap.report['requests']:,} requests at {CONCURRENCY} at once "
        f"(bound: {args.snapshot_mailings:,} x {args.snapshot_latency_ms:g} ms / {CONCURRENCY} "
        f"= {args.snapshot_mailings * args.snapshot_latency_ms / 1000 / CONCURRENCY:.1f} s)"
    )
    return snap


def refresh_and_large(
    args: argparse.Namespace, sim_env: dict[str, str], tmp: str, say: Callable[[str], None]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Items 2 and 3: the 30-day refresh (first load, then the daily refresh), then the
    refreshed warehouse grown past ``--large-rows`` and one send day written into it."""
    now = datetime.fromisoformat(args.now).astimezone(TZ).date()
    first = (now - timedelta(days=REFRESH_DAYS - 1)).isoformat()
    work = Path(tmp) / "refresh"
    say(f"\n## 2. daily refresh of the {REFRESH_DAYS} send days {first} .. {now}")
    say(f"#   dagster job execute -m spotler_pipeline -j {REFRESH_JOB} --tags '<that range>'")
    runs = []
    for name in ("load", "refresh"):
        run = refresh(sim_env, work, first, now.isoformat(), name)
        r = run.report
        if run.returncode == 0:
            say(line(run))
            say(
                f"           {r['requests']:,} requests ({r['requests_by_step']}), rows fetched: "
                + ", ".join(f"{t} {n:,}" for t, n in r["rows_written"].items())
                + f"; recipients kept as complete for {r['mailings_recipients_complete_kept']} "
                f"mailings; {r['checks']} checks {r['check_seconds']:.2f} s"
                + (f", FAILED: {', '.join(r['checks_failed'])}" if r["checks_failed"] else "")
            )
        else:
            # what it asked of the API and fetched is in its log, even when the write failed
            r["rows"] = sum(r["fetched_before_write"].values())
            say(
                f"  {name:8} FAILED after {run.wall_s:.2f} s (peak RSS {run.peak_rss_mb:.0f} MB): "
                f"{r['failure']}"
            )
            say(
                f"           before the write: {r['requests_before_write']:,} requests in the "
                f"interactions step ({r['requests_by_step']} before it); rows fetched: "
                + ", ".join(f"{t} {n:,}" for t, n in r["fetched_before_write"].items())
            )
        runs.append(run)
    refreshed = {"runs": runs[:], "load": runs[0].report, "refresh": runs[1].report}
    if 3 not in args.items:
        return refreshed, {"runs": []}

    say(f"\n## 3. checks after a one-day write into a warehouse of >= {args.large_rows:,} rows")
    database = work / "spotler.duckdb"
    grown = grow_warehouse(database, args.large_rows, say)
    say(
        f"#   grown to {grown['rows']:,} interaction rows ({grown['copies']} synthetic copies "
        f"of the refreshed days, made with DuckDB in {grown['seconds']:.0f} s; "
        f"{grown['megabytes']:,.0f} MB file)"
    )
    day = last_send_day(database, now.isoformat())
    write = ours(sim_env, day, work, "ours-large")
    _check(write)
    write.report["rows"] = sum(write.report["rows_written"].values())  # the day's, not all
    say(f"  one send day ({day}) written as a user does, checked inline on that day:")
    say(line(write))
    say(breakdown(write))
    checks = nightly(sim_env, work)
    _check(checks)
    mine = [c for c in checks.report["check_list"] if c["table"] in INTERACTION_TABLES]
    whole = sum(c["seconds"] or 0 for c in mine)
    say(
        f"  the same interaction checks over every day (job {NIGHTLY_JOB}, what every write "
        f"ran before): {len(mine)} checks {whole:.2f} s; the whole job {checks.wall_s:.2f} s, "
        f"peak RSS {checks.peak_rss_mb:.0f} MB"
        + (
            f", FAILED: {', '.join(checks.report['checks_failed'])}"
            if checks.report["checks_failed"]
            else ""
        )
    )
    inline = [c for c in write.report["check_list"] if c["table"] in INTERACTION_TABLES]
    large = {
        "runs": [write, checks],
        "grown": grown,
        "day": day,
        "inline_check_seconds": sum(c["seconds"] or 0 for c in inline),
        "inline_checks": len(inline),
        "whole_table_check_seconds": whole,
        "whole_table_checks": len(mine),
        "write": write.report,
    }
    say(
        f"  check time after the write: {large['inline_check_seconds']:.2f} s inline on the "
        f"day vs {whole:.2f} s over every day"
    )
    return refreshed, large


def _rows_note(say: Callable[[str], None], run: Run, expected: int) -> None:
    """Say so when a contender did not get the rows the warm-up read from the simulator."""
    got = run.report.get("rows")
    if got != expected:
        say(f"  ! {run.name}: {got:,} rows, but the warm-up read {expected:,} from the simulator")


def _items(text: str) -> set[int]:
    try:
        items = {int(part) for part in text.split(",") if part.strip()}
    except ValueError:
        raise argparse.ArgumentTypeError(f"a comma-separated list of 1-4, got {text!r}") from None
    if not items or not items <= {1, 2, 3, 4}:
        raise argparse.ArgumentTypeError(f"a comma-separated list of 1-4, got {text!r}")
    return items


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _credentials(env: dict[str, str]) -> tuple[str, str]:
    return env["SPOTLER_CONSUMER_KEY"], env["SPOTLER_CONSUMER_SECRET"]


def _check(run: Run) -> None:
    if run.returncode != 0 or "rows" not in run.report:
        raise SystemExit(
            f"{run.name} failed on {run.day} (exit {run.returncode}):\n{run.output_tail}"
        )


def summarise(runs: list[Run], days: dict[str, str]) -> dict[str, Any]:
    """Best of the repeats per contender and day (the least disturbed run)."""

    def best(name: str, day: str, key: Callable[[Run], float]) -> Run | None:
        mine = [r for r in runs if r.name == name and r.day == day]
        return min(mine, key=key) if mine else None

    summary: dict[str, Any] = {}
    for size, day in days.items():
        fl = best("floor", day, lambda r: r.report["seconds"])
        us = best("ours", day, lambda r: r.wall_s)
        assert fl is not None and us is not None
        r = us.report
        summary[size] = {
            "day": day,
            "rows": r["rows"],
            "floor_seconds": fl.report["seconds"],
            "ours_seconds": us.wall_s,
            "startup_seconds": r["startup_seconds"],
            "step_seconds": r["seconds"],
            "fetch_write_seconds": (r["fetch_seconds"] or 0) + (r["write_seconds"] or 0),
            "check_seconds": r["check_seconds"],
            "ours_rows_per_s": rate(r["rows"], us.wall_s),
            "ours_vs_floor": us.wall_s / fl.report["seconds"],
            "ours_peak_rss_mb": us.peak_rss_mb,
            "ours_cpu_seconds": us.cpu_s,
            "floor_peak_rss_mb": fl.peak_rss_mb,
            "ours_requests": r.get("requests"),
            "floor_requests": fl.report.get("requests"),
        }
    dl = best("dlt", days["1M"], lambda r: r.report["seconds"])
    if dl is not None:
        summary["dlt_rows_per_s"] = rate(dl.report["rows"], dl.report["seconds"])
        summary["vs_dlt"] = summary["4M"]["ours_rows_per_s"] / summary["dlt_rows_per_s"]
    return summary


if __name__ == "__main__":
    sys.exit(main())
