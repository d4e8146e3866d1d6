"""Throughput and memory benchmark: our pipeline vs. the JSON floor vs. dlt's ``rest_api``.

    make bench                      # or: .venv/bin/python scripts/bench.py [--help]

One simulator (``spotler-pipeline simulate``, its own process) serves a generated account;
two send days of it are loaded, one with about 1 million and one with about 4 million
mailing interaction rows (recipients + opens + clicks + bounces, several mailings each).
The simulator is warmed first (every page of both days fetched once, unmeasured), so its
generation time is not measured. Then, per day, each contender runs in a fresh process whose
process tree is polled for resident memory:

1. ``floor``: every page fetched (same page size and concurrency as ours) and parsed with
   ``orjson.loads``, the result discarded; the physical limit of a Python client here.
2. ``ours``: ``dagster asset materialize -m spotler_pipeline --select <the four interaction
   assets> --partition DAY`` into a fresh DuckDB file; reported as the CLI's wall time and
   as the step's own time from the run's event log (the CLI adds Dagster's start-up).
3. ``dlt``: dlt's ``rest_api`` source for the same endpoints (offset paging by ``after`` /
   ``pageSize``, the same page size, OAuth 1.0a through ``requests-oauthlib``, dlt's
   defaults otherwise) into DuckDB; the 1M day only.

``--short-pages N`` makes the simulator serve at most N records a page whatever ``pageSize``
asks for, with ``paging.next`` still pointing further (its ``short_pages`` fault, set over
its admin endpoint): a server capping its pages. Every contender must still read every row;
the floor and ours follow ``next`` (a short page alone never ends a listing), dlt then pages
by ``paging.next`` too (its offset paginator would step ``after`` by ``pageSize``).

Console output and the full results (JSON) are written to ``bench_results/``. The last line
is ``rows_per_s=<n> vs_floor=<x> vs_dlt=<y> peak_rss_mb=<m>`` for the 4M day, where
``rows_per_s`` and ``vs_floor`` use the step's own time (``ours / floor``), ``vs_dlt`` is
our rows/s over dlt's (1M day) and ``peak_rss_mb`` is the CLI process tree's peak.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
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
ASSETS = ",".join(f"spotler/mailing_{kind}" for kind in ENDPOINTS)
STEP = "spotler_mailing_interactions"  # the multi-asset's step; the asset checks run after it
# One process for the run (the CLI's own), instead of one per step: the steps then share
# the CLI's interpreter, so the asset checks do not each pay Dagster's start-up again.
IN_PROCESS = '{"execution": {"config": {"in_process": {}}}}'

# With --seed 1 --scale 10 --now 2025-06-01T12:00:00+02:00 (all interactions mature):
SMALL_DAY = "2025-04-30"  # 2 mailings, ~1.05M interaction rows
LARGE_DAY = "2025-04-10"  # 4 mailings, ~3.9M interaction rows


# -- measuring a process tree -----------------------------------------------------------


@dataclass
class Run:
    """One measured process: wall time, peak RSS of its tree, and what it reported."""

    name: str
    day: str
    wall_s: float
    peak_rss_mb: float
    returncode: int
    report: dict[str, Any] = field(default_factory=dict)
    output_tail: str = ""


def measure(name: str, day: str, argv: Sequence[str], env: dict[str, str]) -> Run:
    """Run ``argv`` and poll the resident memory of its whole process tree every 20 ms.

    The command's stdout is expected to end with one JSON line (its own report), unless
    it is the Dagster CLI, whose output is kept for the error message only.
    """
    import psutil

    started = time.perf_counter()
    proc = subprocess.Popen(
        list(argv), env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    peak = 0
    out: list[bytes] = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        total = 0
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += p.memory_info().rss
        peak = max(peak, total)
        time.sleep(0.02)
    proc.wait()
    wall = time.perf_counter() - started
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
    return Run(name, day, wall, peak / 2**20, proc.returncode, report, text[-3000:])


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


# -- ours: the Dagster CLI --------------------------------------------------------------


def ours(
    sim_env: dict[str, str], day: str, work: Path, name: str = "ours", **extra_env: str
) -> Run:
    home = work / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    database = work / "spotler.duckdb"
    env = {
        **os.environ,
        **sim_env,
        "DAGSTER_HOME": str(home),
        "SPOTLER_DUCKDB_PATH": str(database),
        **extra_env,
    }
    argv = [
        str(BIN / "dagster"),
        "asset",
        "materialize",
        "-m",
        "spotler_pipeline",
        "--select",
        ASSETS,
        "--partition",
        day,
        "--config-json",
        IN_PROCESS,
    ]
    run = measure(name, day, argv, env)
    if run.returncode == 0:
        run.report = _dagster_report(home, database)
    return run


def _dagster_report(home: Path, database: Path) -> dict[str, Any]:
    """The step's own time, its API requests and the rows now in DuckDB."""
    import dagster as dg
    import duckdb

    from spotler_pipeline.warehouse.connection import open_warehouse

    with dg.DagsterInstance.from_config(str(home)) as instance:
        (record,) = instance.get_run_records(limit=1)
        run_id = record.dagster_run.run_id
        (step,) = [s for s in instance.get_run_step_stats(run_id) if s.step_key == STEP]
        step_seconds = (step.end_time or 0) - (step.start_time or 0)
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(["spotler", "mailing_recipients"])),
            limit=1,
        ).records
        metadata = records[0].asset_materialization.metadata if records else {}
        requests = metadata.get("api_requests")
        run_seconds = (record.end_time or 0) - (record.start_time or 0)
    conn = open_warehouse(database, read_only=True)
    try:
        rows = {
            kind: conn.execute(f"SELECT count(*) FROM spotler.mailing_{kind}").fetchone()[0]  # type: ignore[index]
            for kind in ENDPOINTS
        }
    finally:
        conn.close()
    del duckdb
    return {
        "seconds": step_seconds,
        "run_seconds": run_seconds,
        "rows": sum(rows.values()),
        "rows_by_table": rows,
        "requests": int(requests.value) if requests is not None else None,
    }


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
    r = run.report
    own = r.get("seconds", float("nan"))
    where = "CLI" if run.name.startswith("ours") else "process"
    extra = f" ({where} {run.wall_s:6.2f} s)"
    return (
        f"  {run.name:5} {r.get('rows', 0):>10,} rows  {own:7.2f} s{extra}  "
        f"{rate(r.get('rows', 0), own):>11,.0f} rows/s  peak RSS {run.peak_rss_mb:6.0f} MB  "
        f"{r.get('requests')} requests"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=float, default=10.0)
    parser.add_argument("--now", default="2025-06-01T12:00:00+02:00")
    parser.add_argument("--small-day", default=SMALL_DAY, help="the ~1M-row send day")
    parser.add_argument("--large-day", default=LARGE_DAY, help="the ~4M-row send day")
    parser.add_argument("--skip-dlt", action="store_true", help="leave dlt out (quicker)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of floor and ours per day")
    parser.add_argument("--out", default=str(ROOT / "bench_results"))
    parser.add_argument(
        "--short-pages",
        type=_positive,
        metavar="N",
        help="the simulator serves at most N records a page (paging.next still points on)",
    )
    parser.add_argument("--worker", choices=["floor", "dlt"], help=argparse.SUPPRESS)
    parser.add_argument("--day", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    say = Console(out / f"bench-{stamp}.txt")
    say(f"# spotler_pipeline benchmark {stamp} on {platform.node()} ({os.cpu_count()} cores)")
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
        say("# warming the simulator (every page of both days, unmeasured) ...")
        warm_started = time.perf_counter()
        warm_rows: dict[str, int] = {}
        for day in days.values():
            w = floor(sim.env["SPOTLER_BASE_URL"], *_credentials(sim.env), day)
            warm_rows[day] = w["rows"]
            say(
                f"#   {day}: {w['rows']:,} rows in {w['mailings']} mailings, "
                f"{w['requests']} requests"
            )
        say(f"# warmed in {time.perf_counter() - warm_started:.1f} s")
        for size, day in days.items():
            say(f"\n## {size}: send day {day}")
            for i in range(args.repeat):
                floor_run = measure("floor", day, [*base, "--worker", "floor", "--day", day], env)
                _check(floor_run)
                say(line(floor_run))
                _rows_note(say, floor_run, warm_rows[day])
                runs.append(floor_run)
                work = Path(tmp) / f"ours-{size}-{i}"
                ours_run = ours(sim.env, day, work)
                _check(ours_run)
                say(line(ours_run))
                _rows_note(say, ours_run, warm_rows[day])
                runs.append(ours_run)
                shutil.rmtree(work, ignore_errors=True)
                # The same with Arrow's jemalloc instead of its default mimalloc, whose
                # per-thread heaps hold on to ~100 MB more (an environment setting only).
                pool = ours(sim.env, day, work, "ours*", ARROW_DEFAULT_MEMORY_POOL="jemalloc")
                _check(pool)
                say(line(pool))
                _rows_note(say, pool, warm_rows[day])
                runs.append(pool)
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

    summary = summarise(runs, days)
    results["runs"] = [asdict(r) | {"output_tail": r.output_tail[-500:]} for r in runs]
    results["summary"] = summary
    say("\n## ratios")
    for size in days:
        s = summary[size]
        say(
            f"  {size}: ours/floor = {s['ours_vs_floor']:.2f}x (step time; "
            f"{s['ours_cli_vs_floor']:.2f}x with the CLI's start-up), "
            f"ours {s['ours_rows_per_s']:,.0f} rows/s, peak RSS {s['ours_peak_rss_mb']:.0f} MB"
        )
    if summary.get("dlt_rows_per_s"):
        say(
            f"  dlt: {summary['dlt_rows_per_s']:,.0f} rows/s on the 1M day; "
            f"ours/dlt rows/s = {summary['vs_dlt']:.1f}x"
        )
    big = summary["4M"]
    growth = big["ours_peak_rss_mb"] / summary["1M"]["ours_peak_rss_mb"] - 1
    say(f"  peak RSS 4M vs 1M: {100 * growth:+.0f}%")
    if big.get("ours_jemalloc_peak_rss_mb"):
        say(
            "  ours* (ARROW_DEFAULT_MEMORY_POOL=jemalloc) peak RSS: "
            f"1M {summary['1M']['ours_jemalloc_peak_rss_mb']:.0f} MB, "
            f"4M {big['ours_jemalloc_peak_rss_mb']:.0f} MB"
        )
    json_path = out / f"bench-{stamp}.json"
    json_path.write_text(json.dumps(results, indent=2, default=str))
    shutil.copyfile(json_path, out / "latest.json")
    say(f"# results: {json_path}")
    vs_dlt = f"{summary['vs_dlt']:.1f}" if summary.get("vs_dlt") else "n/a"
    say(
        f"rows_per_s={big['ours_rows_per_s']:.0f} vs_floor={big['ours_vs_floor']:.2f} "
        f"vs_dlt={vs_dlt} peak_rss_mb={big['ours_peak_rss_mb']:.0f}"
    )
    return 0


def _rows_note(say: Callable[[str], None], run: Run, expected: int) -> None:
    """Say so when a contender did not get the rows the warm-up read from the simulator."""
    got = run.report.get("rows")
    if got != expected:
        say(f"  ! {run.name}: {got:,} rows, but the warm-up read {expected:,} from the simulator")


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

    def best(name: str, day: str) -> Run | None:
        mine = [r for r in runs if r.name == name and r.day == day]
        return min(mine, key=lambda r: r.report["seconds"]) if mine else None

    summary: dict[str, Any] = {}
    for size, day in days.items():
        fl, us, jm = best("floor", day), best("ours", day), best("ours*", day)
        assert fl is not None and us is not None
        summary[size] = {
            "day": day,
            "rows": us.report["rows"],
            "floor_seconds": fl.report["seconds"],
            "ours_seconds": us.report["seconds"],
            "ours_cli_seconds": us.wall_s,
            "ours_rows_per_s": rate(us.report["rows"], us.report["seconds"]),
            "ours_vs_floor": us.report["seconds"] / fl.report["seconds"],
            "ours_cli_vs_floor": us.wall_s / fl.report["seconds"],
            "ours_peak_rss_mb": us.peak_rss_mb,
            "floor_peak_rss_mb": fl.peak_rss_mb,
            "ours_requests": us.report.get("requests"),
            "ours_jemalloc_peak_rss_mb": jm.peak_rss_mb if jm else None,
            "ours_jemalloc_seconds": jm.report["seconds"] if jm else None,
            "floor_requests": fl.report.get("requests"),
        }
    dl = best("dlt", days["1M"])
    if dl is not None:
        summary["dlt_rows_per_s"] = rate(dl.report["rows"], dl.report["seconds"])
        summary["vs_dlt"] = summary["1M"]["ours_rows_per_s"] / summary["dlt_rows_per_s"]
    return summary


if __name__ == "__main__":
    sys.exit(main())
