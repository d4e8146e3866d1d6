"""A 30-day backfill on both warehouse backends, through ``dagster dev`` as a user runs it.

    make bench-backfill            # or: .venv/bin/python scripts/bench_backfill.py [--help]

One simulator (``spotler-pipeline simulate --seed 1 --scale 3.5 --days 31 --prewarm``, its own
process; ~10.8M mailing interaction rows over the 30 days, rendered before anything is
measured) serves both backends in turn, so both fetch exactly the same pages:

- **file**: ``dagster dev`` with ``deploy/local/dagster.yaml`` (SQLite instance storage in
  ``DAGSTER_HOME``, pool ``spotler_duckdb`` limited to 1: writing steps take turns for the
  DuckDB file) and a fresh ``SPOTLER_DUCKDB_PATH``;
- **lake**: ``dagster dev`` with ``deploy/team/dagster.yaml`` (Dagster's storage and the
  DuckLake catalog on one throwaway PostgreSQL, pool ``spotler_api`` limited to 4: runs write
  at once), Parquet files in a fresh ``SPOTLER_DUCKLAKE_DATA_PATH``.

Each launches the mailings group (mailings, links, recipients, opens, clicks, bounces) over
the 30 days before today as ``--parts`` backfills of consecutive days through the UI's GraphQL
``launchPartitionBackfill`` (the backfill policy puts up to 31 days in one run, so one backfill
would be one run; both backends get the same split) and measures:

- **wall**: launch to the last backfill done; **run span**: first run start to last run end;
- **runs in parallel**: most runs ``STARTED`` at once, and most writing steps executing at
  once, from the run records;
- **peak memory**: resident memory of ``dagster dev``'s whole process tree (webserver, daemon,
  code servers, run workers), sampled every 0.5 s (the simulator and PostgreSQL apart);
- **reader cost per write**: file: every copy published for readers (``published/``, polled
  every 0.1 s: how many, their sizes) and the time ``publish_snapshot`` takes on the final
  file; lake: bytes copied for readers (none: no DuckDB file, no published copy; a reader
  attaches the latest snapshot), the Parquet bytes in the data path beside it;
- **rows**: interaction rows stored per day equal what the simulator served.

Results: ``bench_results/bench_backfill.json`` and ``.txt``; the last line is
``file_wall_s=<a> lake_wall_s=<b> speedup=<a/b> lake_runs_at_once=<n> ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))  # the test helpers (dagster dev, PostgreSQL) live beside

import httpx  # noqa: E402
import psutil  # noqa: E402
from bench import tree_rss  # noqa: E402  (scripts/bench.py, beside this script)

from spotler_pipeline.devserver import SimulatorProcess, start_simulator_process  # noqa: E402
from spotler_pipeline.warehouse.connection import open_warehouse  # noqa: E402
from spotler_pipeline.warehouse.publish import publish_snapshot, published_path  # noqa: E402
from spotler_pipeline_tests import team_deployment as td  # noqa: E402
from spotler_pipeline_tests.e2e_dagster import DagsterDev  # noqa: E402
from spotler_pipeline_tests.postgres import start_postgres  # noqa: E402

RESULTS = PROJECT / "bench_results"
STEP_STATS = """
query Steps($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { stepStats { stepKey status startTime endTime } }
  }
}
"""
MB = 1024 * 1024
#: The steps that fetch and write (pool spotler_duckdb or spotler_api); a run's other steps
#: (freshness checks, the nightly checks) only read.
WRITING_STEPS = ("spotler_mailings", "spotler_mailing_interactions")


# -- the shared simulator ----------------------------------------------------------------------


class _SharedSimulator:
    """Mixin: use the bench's one simulator instead of starting (and stopping) one's own."""

    shared: SimulatorProcess

    def _start_simulator(self) -> None:
        self.sim_env = dict(self.shared.env)  # type: ignore[attr-defined]
        self.admin_url = self.shared.admin_url  # type: ignore[attr-defined]


class FileDagster(_SharedSimulator, DagsterDev):
    pass


class LakeDagster(_SharedSimulator, td.TeamDagster):
    pass


# -- samplers ----------------------------------------------------------------------------------


class TreeMemory(threading.Thread):
    """Peak resident memory (sum) of a process and all its descendants."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak = 0
        self.peak_processes = 0
        self._halt = threading.Event()

    def sample(self) -> None:
        total, processes = tree_rss(self.pid)
        if total > self.peak:
            self.peak, self.peak_processes = total, processes

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


class PublishWatch(threading.Thread):
    """Every copy published for readers: a new file swapped in at ``published/<name>``."""

    def __init__(self, path: Path, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.path, self.interval = path, interval
        self.copies: list[int] = []  # size of each published copy, in order
        self._last: tuple[int, int] | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            self.poll()

    def poll(self) -> None:
        try:
            st = self.path.stat()
        except OSError:
            return
        key = (st.st_ino, st.st_mtime_ns)
        if key != self._last:
            self._last = key
            self.copies.append(st.st_size)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)
        self.poll()


# -- one backend -------------------------------------------------------------------------------


@dataclass
class Result:
    backend: str
    parts: int
    wall_s: float = 0.0
    run_span_s: float = 0.0
    runs: int = 0
    runs_at_once: int = 0
    steps_at_once: int = 0
    steps_overlapping_s: float = 0.0
    steps: list[dict[str, Any]] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    peak_processes: int = 0
    machine_cpu_busy_pct: float = 0.0
    #: lake writes that found another run's commit first and wrote again (run logs)
    commit_retries: int = 0
    interaction_rows: int = 0
    rows_match: bool = False
    reader: dict[str, Any] = field(default_factory=dict)
    statuses: list[str] = field(default_factory=list)
    failures: dict[str, list[str]] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"{self.backend:5} wall {self.wall_s:6.1f} s  run span {self.run_span_s:6.1f} s  "
            f"runs {self.runs} ({self.runs_at_once} at once; writing steps: {self.steps_at_once} "
            f"at once, {self.steps_overlapping_s:.0f} s with 2+)  "
            f"peak RSS {self.peak_rss_mb:,.0f} MB ({self.peak_processes} processes)  "
            f"CPUs {self.machine_cpu_busy_pct:.0f}% busy  "
            f"rows {self.interaction_rows:,} {'= served' if self.rows_match else '!= SERVED'}"
        )


def cpu_busy_pct(before: Any, after: Any) -> float:
    """How busy the machine's CPUs were between two ``psutil.cpu_times()`` (every process,
    this benchmark's and anyone else's)."""
    total = sum(after) - sum(before)
    idle = (after.idle + getattr(after, "iowait", 0)) - (before.idle + getattr(before, "iowait", 0))
    return round(100 * (1 - idle / total), 1) if total > 0 else 0.0


def step_spans(dagster: DagsterDev, runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Start and end of every writing step of ``runs``."""
    spans = []
    for run in runs:
        data = dagster.graphql(STEP_STATS, {"runId": run["runId"]})["runOrError"]
        for step in data.get("stepStats") or []:
            if step["startTime"] and step["stepKey"] in WRITING_STEPS:
                spans.append({"run": run["runId"][:8], **step})
    return spans


def seconds_overlapping(spans: Sequence[dict[str, Any]], at_least: int = 2) -> float:
    """Seconds during which ``at_least`` of ``spans`` were running at once."""
    events = sorted(
        [(float(s["startTime"]), 1) for s in spans]
        + [(float(s["endTime"] or s["startTime"]), -1) for s in spans],
        key=lambda e: (e[0], e[1]),
    )
    total, running, since = 0.0, 0, 0.0
    for when, step in events:
        if running >= at_least:
            total += when - since
        running += step
        since = when
    return total


def stored_by_day(con: Any, days: Sequence[str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for table in td.MAILING_INTERACTIONS:
        rows = con.execute(
            f"SELECT strftime(send_day, '%Y-%m-%d'), count(*) FROM spotler.{table} GROUP BY ALL"
        ).fetchall()
        out[table] = {d: n for d, n in rows if d in days}
    return out


def compare(
    served: dict[str, dict[str, int]], stored: dict[str, dict[str, int]], days: Sequence[str]
) -> tuple[int, bool]:
    total, same = 0, True
    for table in td.MAILING_INTERACTIONS:
        for d in days:
            want, got = served.get(d, {}).get(table, 0), stored[table].get(d, 0)
            total += got
            same = same and want == got
    return total, same


def run_backend(
    name: str,
    dagster: DagsterDev,
    parts: int,
    days_count: int,
    say: Callable[[str], None],
    timeout: float,
) -> tuple[Result, list[str], list[int]]:
    """Start ``dagster dev``, backfill, measure; returns the result, the days and the sizes
    of the copies published for readers meanwhile (none on a lake)."""
    result = Result(name, parts)
    say(f"[{name}] starting dagster dev ({dagster.root})")
    dagster.start()
    assert dagster.dagster_proc is not None
    memory = TreeMemory(dagster.dagster_proc.pid)
    memory.sample()
    memory.start()
    watch = PublishWatch(published_path(dagster.database))
    watch.start()
    days = td.past_days(dagster, days_count)
    say(f"[{name}] {parts} backfills over {days[0]}..{days[-1]}")
    cpu_before = psutil.cpu_times()
    started = time.monotonic()
    ids = td.launch_backfills(dagster, td.MAILINGS_GROUP, days, parts)
    td.wait_for_backfills(dagster, ids, timeout=timeout)
    result.wall_s = round(time.monotonic() - started, 1)
    result.machine_cpu_busy_pct = cpu_busy_pct(cpu_before, psutil.cpu_times())
    memory.stop()
    watch.stop()
    runs = td.backfill_runs(dagster, ids)
    result.runs = len(runs)
    result.statuses = sorted(r["status"] for r in runs)
    result.failures = td.failures(dagster, [r["runId"] for r in runs if r["status"] != "SUCCESS"])
    for run_id, errors in result.failures.items():
        say(f"[{name}] run {run_id} FAILED: " + " | ".join(errors))
        RESULTS.mkdir(exist_ok=True)
        shutil.copy(dagster.log_path, RESULTS / f"bench_backfill_{name}_dagster_dev.log")
    result.runs_at_once = td.max_overlap(runs)
    result.run_span_s = round(td.run_span(runs), 1)
    spans = step_spans(dagster, runs)
    result.steps_at_once = td.max_overlap(spans)
    result.steps_overlapping_s = round(seconds_overlapping(spans), 1)
    result.steps = spans
    result.peak_rss_mb = round(memory.peak / MB)
    result.peak_processes = memory.peak_processes
    result.commit_retries = dagster.log(tail=10**9).count("Another run committed to the same")
    return result, days, watch.copies


def file_backend(args: argparse.Namespace, work: Path, say: Callable[[str], None]) -> Result:
    dagster = FileDagster(work / "file", scale=args.scale, seed=args.seed)
    try:
        result, days, copies = run_backend(
            "file", dagster, args.parts, args.days, say, args.timeout
        )
        served = dagster.simulator_summary()["days"]
    finally:
        dagster.stop()
    # Readers: the copies published during the backfill, and one more timed on the final file.
    con = open_warehouse(published_path(dagster.database), read_only=True)
    try:
        result.interaction_rows, result.rows_match = compare(served, stored_by_day(con, days), days)
    finally:
        con.close()
    size = dagster.database.stat().st_size
    timings = []
    for _ in range(3):
        con = open_warehouse(dagster.database)
        try:
            t = time.perf_counter()
            publish_snapshot(con, dagster.database)
            timings.append(time.perf_counter() - t)
        finally:
            con.close()
    result.reader = {
        "copies_published": len(copies),
        "bytes_copied_total_mb": round(sum(copies) / MB),
        "copy_sizes_mb_first_last": [
            round(copies[0] / MB) if copies else 0,
            round(copies[-1] / MB) if copies else 0,
        ],
        "final_file_mb": round(size / MB),
        "publish_s_at_final_size": round(statistics.median(timings), 2),
    }
    shutil.rmtree(dagster.root, ignore_errors=True)
    return result


def lake_backend(args: argparse.Namespace, work: Path, say: Callable[[str], None]) -> Result:
    postgres = start_postgres()
    dagster = LakeDagster(work / "lake", postgres, scale=args.scale, seed=args.seed)
    try:
        result, days, copies = run_backend(
            "lake", dagster, args.parts, args.days, say, args.timeout
        )
        served = dagster.simulator_summary()["days"]
        env = dagster.environment()
        dagster.stop()
        # A reader as a notebook opens it: the latest committed snapshot, attached read-only.
        reader = subprocess.run(
            [sys.executable, "-c", _LAKE_READER, json.dumps(days)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            cwd=PROJECT,
        )
        if reader.returncode != 0:
            raise RuntimeError(f"reading the lake failed: {reader.stderr[-2000:]}")
        read = json.loads(reader.stdout.strip().splitlines()[-1])
        result.interaction_rows, result.rows_match = compare(served, read["stored"], days)
        parquet = sum(p.stat().st_size for p in dagster.lake_data_path.rglob("*") if p.is_file())
        result.reader = {
            "copies_published": len(copies),
            "duckdb_file_exists": dagster.database.exists(),
            "published_copy_exists": published_path(dagster.database).exists(),
            "lake_data_mb": round(parquet / MB),
            "reader_attach_s": read["attach_s"],
            "reader_count_s": read["count_s"],
            "snapshots": read["snapshots"],
        }
    finally:
        dagster.stop()
        postgres.stop()
        shutil.rmtree(dagster.root, ignore_errors=True)
    return result


_LAKE_READER = """
import json, sys, time
from spotler_pipeline.notebook import connect
days = json.loads(sys.argv[1])
t = time.perf_counter()
con = connect()
attach = time.perf_counter() - t
t = time.perf_counter()
stored = {}
for table in ("mailing_recipients", "mailing_opens", "mailing_clicks", "mailing_bounces"):
    rows = con.execute(
        f"SELECT strftime(send_day, '%Y-%m-%d'), count(*) FROM spotler.{table} GROUP BY ALL"
    ).fetchall()
    stored[table] = {d: n for d, n in rows if d in days}
count = time.perf_counter() - t
(snapshots,) = con.execute("SELECT count(*) FROM lake.snapshots()").fetchone()
print(json.dumps({"stored": stored, "attach_s": round(attach, 2), "count_s": round(count, 2),
                  "snapshots": snapshots}))
"""


# -- main --------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--scale", type=float, default=3.5, help="simulator scale (3.5: ~10.8M rows in 30 days)"
    )
    parser.add_argument("--days", type=int, default=30, help="days to backfill")
    parser.add_argument(
        "--parts", type=int, default=4, help="backfills the days are split into (both backends)"
    )
    parser.add_argument("--backends", default="file,lake", help="comma-separated: file, lake")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="answer every API request this much later (the simulator's 'slow' fault): the "
        "time a remote Spotler spends per page, which loopback does not have",
    )
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per backfill")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if unknown := set(backends) - {"file", "lake"}:
        parser.error(f"unknown backend(s): {sorted(unknown)}")

    args.out.mkdir(parents=True, exist_ok=True)
    log_lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        log_lines.append(text)

    for name in list(os.environ):
        if name.startswith(("SPOTLER_DUCKLAKE_", "DAGSTER_PG_")) or name == "PGPASSWORD":
            del os.environ[name]  # the file backend must not see a lake
    work = Path(tempfile.mkdtemp(prefix="spotler-bench-backfill-"))
    say(f"simulator: seed {args.seed}, scale {args.scale}, {args.days + 1} days, pre-rendering")
    t = time.monotonic()
    sim = start_simulator_process(
        seed=args.seed, scale=args.scale, days=args.days + 1, prewarm=True
    )
    say(f"simulator ready in {time.monotonic() - t:.0f} s ({sim.base_url})")
    if args.latency_ms > 0:
        slow = {
            "kind": "slow",
            "path_pattern": "/integrationservice",
            "times": None,
            "seconds": args.latency_ms / 1000,
        }
        httpx.post(f"{sim.admin_url}/faults", json=slow, timeout=30).raise_for_status()
        say(f"every API request answered {args.latency_ms:.0f} ms later")
    _SharedSimulator.shared = sim
    results: list[Result] = []
    try:
        for backend in backends:
            run = file_backend if backend == "file" else lake_backend
            result = run(args, work, say)
            results.append(result)
            say(result.line())
            say(f"      reader cost: {json.dumps(result.reader)}")
    finally:
        sim.stop()
        shutil.rmtree(work, ignore_errors=True)

    summary: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"cpus": os.cpu_count(), "load_avg_at_end": os.getloadavg()},
        "settings": vars(args) | {"out": str(args.out)},
        "results": [r.__dict__ for r in results],
    }
    by = {r.backend: r for r in results}
    last = []
    if "file" in by and "lake" in by:
        f, lk = by["file"], by["lake"]
        summary["speedup_wall"] = round(f.wall_s / lk.wall_s, 2) if lk.wall_s else None
        summary["speedup_run_span"] = (
            round(f.run_span_s / lk.run_span_s, 2) if lk.run_span_s else None
        )
        last = [
            f"file_wall_s={f.wall_s}",
            f"lake_wall_s={lk.wall_s}",
            f"speedup={summary['speedup_wall']}",
            f"file_runs_at_once={f.runs_at_once}",
            f"lake_runs_at_once={lk.runs_at_once}",
            f"file_steps_at_once={f.steps_at_once}",
            f"lake_steps_at_once={lk.steps_at_once}",
            f"file_peak_rss_mb={f.peak_rss_mb:.0f}",
            f"lake_peak_rss_mb={lk.peak_rss_mb:.0f}",
            f"file_publish_s={f.reader.get('publish_s_at_final_size')}",
            "lake_publish_s=0",
        ]
    else:
        last = [f"{r.backend}_wall_s={r.wall_s}" for r in results]
    say(" ".join(last))
    (args.out / "bench_backfill.json").write_text(json.dumps(summary, indent=2, default=str))
    (args.out / "bench_backfill.txt").write_text("\n".join(log_lines) + "\n")
    ok = all(r.rows_match and set(r.statuses) == {"SUCCESS"} for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
