"""Benchmark: the follow-up rules on a large warehouse, as their daily run does it.

Measured, each in a fresh process (wall time and peak RSS):

1. **evaluate**: per shipped rule, its query replaces ``follow_ups.<rule>``, the status view
   is refreshed, crashed sends reconciled, the events to act on read, and the two checks
   (``event_key`` unique, contacts known) counted: the rule's step up to its first send.
2. **bookkeeping**: a dry run's record of every event of every rule (the first run's, the
   largest), then a live run's per-event work for ``--sends`` events of one rule: claim
   (``sending``) and outcome, each its own transaction on a freshly opened warehouse, as
   the asset does around each request (the request itself not included).

The warehouse: ``--database`` (a copy is measured, the file is left as it is; e.g. the
large warehouse ``scripts/bench.py`` grows), or else a synthetic one of ``--rows``
interaction rows made with DuckDB (recipients, 2% hard bounces, 5% clicks, survey answers).

    python scripts/bench_follow_ups.py --rows 2000000          # a quick proof
    python scripts/bench_follow_ups.py --database big.duckdb   # the 50M-row warehouse
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

NOW = "2026-06-15T10:00:00+02:00"


def build(database: Path, rows: int) -> None:
    """A synthetic warehouse of about ``rows`` interaction rows (ids of no real account)."""
    from spotler_pipeline.warehouse import ensure_schema
    from spotler_pipeline.warehouse.connection import open_warehouse

    recipients = int(rows / 1.07)
    conn = open_warehouse(database, config={"memory_limit": "1GB"})
    try:
        ensure_schema(conn)
        conn.execute("SET enable_progress_bar = false")
        base = (
            "SELECT i, 'm' || (i // 20000) AS mailing_id, 'c' || (i % 1000003) || '@x.nl' AS "
            "contact, 'e' || (i % 1000003) AS enc, DATE '2026-06-14' - CAST(i // 200000 AS "
            "INTEGER) AS day FROM range(?) t(i)"
        )
        conn.execute(
            f"INSERT INTO spotler.mailing_recipients BY NAME SELECT day AS send_day, mailing_id, "
            f"contact AS contact_external_id, enc AS contact_encrypted_id FROM ({base})",
            [recipients],
        )
        conn.execute(
            f"INSERT INTO spotler.mailing_bounces BY NAME SELECT day AS send_day, mailing_id, "
            "contact AS contact_external_id, enc AS contact_encrypted_id, "
            "CAST(day AS TIMESTAMPTZ) + INTERVAL 3 HOUR AS bounce_date, CASE WHEN i % 3 = 0 "
            f"THEN 'SOFTBOUNCE' ELSE 'HARDBOUNCE' END AS bounce_type FROM ({base}) "
            "WHERE i % 50 = 7",
            [recipients],
        )
        conn.execute(
            "INSERT INTO spotler.mailing_links BY NAME SELECT DISTINCT day AS send_day, "
            "mailing_id, 'L1' AS link_id, 'shop' AS name, 'webshop' AS type FROM "
            f"({base})",
            [recipients],
        )
        conn.execute(
            f"INSERT INTO spotler.mailing_clicks BY NAME SELECT day AS send_day, mailing_id, "
            "contact AS contact_external_id, enc AS contact_encrypted_id, "
            "CAST(day AS TIMESTAMPTZ) + INTERVAL 5 HOUR AS click_date, 'L1' AS link_id "
            f"FROM ({base}) WHERE i % 20 = 3",
            [recipients],
        )
        answers = max(1000, rows // 1000)
        survey = (
            "SELECT i, 'r' || i AS result, DATE '2026-06-14' - CAST(i % 30 AS INTEGER) AS day "
            "FROM range(?) t(i)"
        )
        conn.execute(
            "INSERT INTO spotler.form_results BY NAME SELECT day AS submit_day, '2104' AS "
            "form_id, result AS form_result_id, CAST(day AS TIMESTAMPTZ) AS submitted_at, true "
            f"AS completed, false AS test_result, 2 AS answer_count FROM ({survey})",
            [answers],
        )
        conn.execute(
            "INSERT INTO spotler.form_answers BY NAME SELECT day AS submit_day, '2104' AS "
            "form_id, result AS form_result_id, 1 AS rank, '21041' AS field_id, 'Score' AS "
            "description, 'text' AS answer_type, CAST(i % 11 AS VARCHAR) AS answer_text "
            f"FROM ({survey}) UNION ALL SELECT day, '2104', result, 4, '21044', 'Opmerkingen', "
            f"'text', 'te laat' FROM ({survey}) WHERE i % 4 = 0",
            [answers, answers],
        )
        conn.execute(
            "INSERT INTO spotler.contact_form_history BY NAME SELECT day AS activity_day, "
            "'c' || i || '@x.nl' AS contact_external_id, '2104' AS form_id, result AS "
            f"form_result_id, day AS submit_day FROM ({survey})",
            [answers],
        )
    finally:
        conn.close()


def child(step: str, database: str, sends: int) -> None:
    """One measured step, in this process; prints its result as JSON."""
    from spotler_pipeline.defs.follow_up_rules import load_rules
    from spotler_pipeline.warehouse import ensure_schema
    from spotler_pipeline.warehouse import follow_ups as fu
    from spotler_pipeline.warehouse.connection import open_warehouse

    now = datetime.fromisoformat(NOW)
    rules = load_rules()
    started = time.perf_counter()
    detail: dict[str, Any] = {}

    def transaction(work: Any) -> Any:
        conn = open_warehouse(database)
        try:
            conn.execute("BEGIN TRANSACTION")
            result = work(conn)
            conn.execute("COMMIT")
            return result
        finally:
            conn.close()

    if step == "evaluate":
        for rule in rules:
            begun = time.perf_counter()

            def evaluate(conn: Any, rule: Any = rule) -> int:
                ensure_schema(conn)
                fu.ensure_follow_ups(conn)
                fu.evaluate_rule(conn, rule.name, *rule.sql(now))
                fu.refresh_status_view(conn)
                fu.reconcile(conn, rule.name, now)
                return fu.events_to_act_on(conn, rule.name, limit=25).count

            def check(conn: Any, rule: Any = rule) -> None:
                fu.duplicate_keys(conn, rule.name)
                fu.unknown_contacts(conn, rule.name, fu.KNOWN_CONTACTS_IN)

            found = transaction(evaluate)
            transaction(check)  # as the asset does: once the evaluation has committed
            detail[rule.name] = {"events": found, "seconds": time.perf_counter() - begun}
    else:
        begun = time.perf_counter()
        previewed = sum(
            transaction(lambda c, r=r: fu.record_dry_run(c, r.name, "bench", now)) for r in rules
        )
        detail["dry_run_recorded"] = {
            "events": previewed,
            "seconds": time.perf_counter() - begun,
        }
        rule = rules[0]
        pending = transaction(lambda c: fu.events_to_act_on(c, rule.name, limit=sends))
        begun = time.perf_counter()
        answered: tuple[Any, int] | None = None
        # as the asset does: one transaction records an answer and claims the next event
        for event in [*pending.first, None]:

            def step(c: Any, e: Any = event, done: Any = answered) -> int | None:
                if done is not None:
                    fu.record_outcome(
                        c, rule.name, done[0].event_key, done[1], status="sent",
                        http_status=204, error_type=None, message=None, now=now,
                    )  # fmt: skip
                return None if e is None else fu.claim(c, rule.name, e, "bench", "bench", now)

            attempt = transaction(step)
            answered = None if event is None or attempt is None else (event, attempt)
        events = pending.first
        per = (time.perf_counter() - begun) / max(1, min(sends, len(events)))
        detail["per_send_ms"] = round(per * 1000, 1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": time.perf_counter() - started, "peak_rss_mb": peak, **detail}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", type=Path, help="a warehouse to measure a copy of")
    parser.add_argument("--rows", type=int, default=2_000_000, help="synthetic warehouse size")
    parser.add_argument("--sends", type=int, default=25, help="live sends' bookkeeping")
    parser.add_argument("--child", choices=("evaluate", "bookkeeping"), help=argparse.SUPPRESS)
    parser.add_argument("--at", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.at, args.sends)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-follow-ups-") as tmp:
        database = Path(tmp) / "spotler.duckdb"
        started = time.perf_counter()
        if args.database:
            shutil.copyfile(args.database, database)
            made = f"a copy of {args.database}"
        else:
            build(database, args.rows)
            made = f"a synthetic warehouse of ~{args.rows:,} interaction rows"
        size = database.stat().st_size / 2**20
        print(f"# {made} ({time.perf_counter() - started:.0f} s, {size:,.0f} MB), "
              f"{datetime.now(UTC):%Y-%m-%d %H:%M}")  # fmt: skip
        for step in ("evaluate", "bookkeeping"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", step, "--at", str(database),
                 "--sends", str(args.sends)],
                capture_output=True, text=True,
            )  # fmt: skip
            if out.returncode:
                print(f"{step} failed (exit {out.returncode}):\n{out.stderr}", file=sys.stderr)
                return 1
            result = json.loads(out.stdout.strip().splitlines()[-1])
            seconds, peak = result.pop("seconds"), result.pop("peak_rss_mb")
            print(f"{step:12} {seconds:7.2f} s  peak RSS {peak:6.0f} MB  "
                  f"{json.dumps(result, default=str)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
