"""``spotler-pipeline``: command-line entry points.

Subcommands import what they need when they run, so ``spotler-pipeline --help`` stays fast
and one subcommand's dependencies never burden another.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spotler_pipeline.simulator import Simulator
    from spotler_pipeline.warehouse.lake import LakeSettings


def _heavy_day(text: str) -> tuple[date, int]:
    day, _, rows = text.partition("=")
    try:
        return date.fromisoformat(day), int(rows)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD=ROWS, got {text!r}") from None


def _simulate(args: argparse.Namespace) -> int:
    from spotler_pipeline.simulator import Simulator

    sim = Simulator(
        seed=args.seed,
        scale=args.scale,
        now=datetime.fromisoformat(args.now) if args.now else None,
        days=args.days,
        host=args.host,
        port=args.port,
        heavy_days=dict(args.heavy_day),
        contract_exact=args.contract_exact,
    )

    def stop_now(signum: int, frame: object) -> None:
        # Pre-rendering takes minutes at a large --scale: stop now, not after it.
        raise _StoppedBeforeServing(signal.Signals(signum).name)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop_now)
    try:
        with sim:
            if args.prewarm:
                print("# pre-rendering every interaction row ...", file=sys.stderr, flush=True)
                print(f"# pre-rendered {sim.prewarm():,} interaction rows", file=sys.stderr)
            _serve(sim)
    except _StoppedBeforeServing as stopped:
        print(f"# stopped by {stopped} before serving", file=sys.stderr)
        return 1
    return 0


class _StoppedBeforeServing(Exception):
    """A stop signal arrived while the simulator was still pre-rendering its rows."""


def _serve(sim: Simulator) -> None:
    """Print the settings a client needs, then serve until SIGINT or SIGTERM."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    # `export` lines: a shell that evals them passes the settings on to its children.
    print(f"export SPOTLER_BASE_URL={shlex.quote(sim.base_url)}")
    print(f"export SPOTLER_CONSUMER_KEY={shlex.quote(sim.consumer_key)}")
    print(f"export SPOTLER_CONSUMER_SECRET={shlex.quote(sim.consumer_secret)}", flush=True)
    print(f"# clock {sim.now.isoformat()}; admin at {sim.admin_url}", file=sys.stderr)
    while not stop.wait(0.5):
        pass


def _lake_settings(args: argparse.Namespace) -> LakeSettings | None:
    """The lake named by ``--catalog`` / ``--data-path``, each defaulting to its environment
    variable (SPOTLER_DUCKLAKE_CATALOG / _DATA_PATH); ``None`` when no catalog is named."""
    from spotler_pipeline.warehouse.lake import LakeSettings

    settings = LakeSettings.from_env()
    if args.catalog:
        return LakeSettings(args.catalog, args.data_path or (settings and settings.data_path))
    if settings is not None and args.data_path:
        return LakeSettings(settings.catalog, args.data_path)
    return settings


def _migrate_to_lake(args: argparse.Namespace) -> int:
    import duckdb

    from spotler_pipeline.warehouse.lake import redact
    from spotler_pipeline.warehouse.legacy import LegacyUpgradeError
    from spotler_pipeline.warehouse.migrate_to_lake import (
        MigrationError,
        format_report,
        migrate_to_lake,
    )

    settings = _lake_settings(args)
    if settings is None:
        print(
            "spotler-pipeline migrate-to-lake: set SPOTLER_DUCKLAKE_CATALOG and "
            "SPOTLER_DUCKLAKE_DATA_PATH (or --catalog / --data-path) to the lake to copy into",
            file=sys.stderr,
        )
        return 2
    try:
        report = migrate_to_lake(
            args.database,
            settings,
            replace=args.replace,
            progress=lambda msg: print(msg, file=sys.stderr, flush=True),
        )
    except (MigrationError, LegacyUpgradeError, duckdb.Error) as exc:
        print(f"spotler-pipeline migrate-to-lake: {redact(str(exc))}", file=sys.stderr)
        return 1
    print(format_report(report))
    return 0


def _convert_legacy(args: argparse.Namespace) -> int:
    """Convert the DuckDB-2 warehouse file of release 0.1.0 for this release's DuckDB."""
    from spotler_pipeline.settings import duckdb_path
    from spotler_pipeline.warehouse.legacy import LegacyUpgradeError, convert_legacy_file

    path = Path(args.database) if args.database else duckdb_path()
    say = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    try:
        done = convert_legacy_file(path, say=say)
    except LegacyUpgradeError as exc:
        print(f"spotler-pipeline convert-legacy: {exc}", file=sys.stderr)
        return 1
    if done is None:
        print(f"{path}: nothing to convert (no such file, or this DuckDB reads it)")
    else:
        print(done.describe())
    return 0


ADOPT_ACCOUNT = "spotler-pipeline adopt-account"
CONSUMER_KEY_ENV = "SPOTLER_CONSUMER_KEY"


def _adopt_account(args: argparse.Namespace) -> int:
    """Make the warehouse record the account of the key in SPOTLER_CONSUMER_KEY (a rotated
    key of the same Spotler account). Reads before it writes, writes only with ``--yes``,
    and shows accounts by fingerprint only: the key itself is never printed."""
    import duckdb

    from spotler_pipeline.warehouse.account import (
        account_fingerprint,
        adopt_account,
        recorded_account,
    )
    from spotler_pipeline.warehouse.connection import open_warehouse
    from spotler_pipeline.warehouse.lake import open_lake, redact, retry_on_conflict
    from spotler_pipeline.warehouse.migrate_to_lake import default_source

    def fail(message: str) -> int:
        print(f"{ADOPT_ACCOUNT}: {message}", file=sys.stderr)
        return 2

    key = os.environ.get(CONSUMER_KEY_ENV)
    if not key:
        return fail(f"set {CONSUMER_KEY_ENV} to the consumer key whose account to adopt")
    new = account_fingerprint(key)
    # As the resources choose: the lake when a catalog is named, else the file; --database
    # names the file explicitly, whatever the environment says.
    lake = None if args.database else _lake_settings(args)
    if lake is not None:
        where = f"the DuckLake warehouse {redact(lake.catalog)!r}"

        def connect(read_only: bool) -> duckdb.DuckDBPyConnection:
            return open_lake(lake, read_only=read_only)
    else:
        path = Path(args.database) if args.database else default_source()
        where = f"the warehouse file {path}"
        if not path.is_file():
            return fail(f"there is no warehouse file at {path}; nothing changed")

        def connect(read_only: bool) -> duckdb.DuckDBPyConnection:
            return open_warehouse(
                path, read_only=read_only, on_wait=lambda m: print(m, file=sys.stderr)
            )

    try:
        conn = connect(True)
    except duckdb.Error as exc:
        return fail(f"cannot open {where}: {redact(str(exc)).splitlines()[0]}; nothing changed")
    try:
        old = recorded_account(conn)
    except duckdb.CatalogException:
        old = None  # no spotler_meta.account yet: nothing has been written
    finally:
        conn.close()

    subject = where[0].upper() + where[1:]
    if old is None:
        print(
            f"{subject} records no account yet: its first write will record the "
            "account of the key it runs with. Nothing to adopt; nothing changed."
        )
        return 0
    if old == new:
        print(
            f"{subject} already records account {new}, the account of "
            f"{CONSUMER_KEY_ENV}. Nothing changed."
        )
        return 0
    print(
        f"{subject} holds the data of account {old}; the key in {CONSUMER_KEY_ENV} "
        f"belongs to account {new} (accounts are shown by fingerprint: a hash of the key).\n"
        f"Adopting records account {new} instead, so that runs with the new key write into "
        "this warehouse, beside every row already in it. Do it only when the new key belongs "
        "to the same Spotler account (a rotated key); another account's data needs another "
        "warehouse (SPOTLER_DUCKDB_PATH or the lake settings)."
    )
    if not args.yes:
        print("Nothing changed: re-run with --yes to adopt.", file=sys.stderr)
        return 1
    try:
        conn = connect(False)
        try:
            retry_on_conflict(lambda: adopt_account(conn, new))
        finally:
            conn.close()
    except duckdb.Error as exc:
        return fail(f"adopting failed: {redact(str(exc)).splitlines()[0]}")
    print(f"Adopted: {where} now records account {new} (was {old}); no row was changed.")
    return 0


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a day YYYY-MM-DD, got {text!r}") from None


def _backfill(args: argparse.Namespace) -> int:
    from spotler_pipeline.backfill import main as backfill

    return backfill(args)


def _add_warehouse_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the DuckDB-file and the DuckLake warehouses are, as the resources find them."""
    parser.add_argument(
        "--database",
        help="the warehouse file (default: SPOTLER_DUCKDB_PATH or data/spotler.duckdb)",
    )
    parser.add_argument("--catalog", help="DuckLake catalog (default: SPOTLER_DUCKLAKE_CATALOG)")
    parser.add_argument(
        "--data-path", help="DuckLake data path (default: SPOTLER_DUCKLAKE_DATA_PATH)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spotler-pipeline",
        description="The Spotler pipeline's commands: serve the simulated Spotler API, backfill "
        "days through the running Dagster webserver, copy the warehouse into a DuckLake, and "
        "adopt a rotated consumer key. Run a command with --help for its options.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    simulate = commands.add_parser(
        "simulate",
        help="serve a Spotler-compatible API on loopback until interrupted",
        description="Serve a simulated Spotler account; prints 'export SPOTLER_*=...' lines.",
    )
    simulate.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    simulate.add_argument(
        "--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)"
    )
    simulate.add_argument(
        "--seed", type=int, default=1, help="the account's random seed: one seed, the same data"
    )
    simulate.add_argument("--scale", type=float, default=1.0, help="audience multiplier")
    simulate.add_argument("--now", help="initial simulated time, ISO 8601 (default: real now)")
    simulate.add_argument("--days", type=int, default=60, help="days of history before now")
    simulate.add_argument(
        "--heavy-day",
        type=_heavy_day,
        action="append",
        default=[],
        metavar="YYYY-MM-DD=ROWS",
        help="add a mailing that day with about ROWS interaction rows (repeatable)",
    )
    simulate.add_argument(
        "--prewarm", action="store_true", help="render all rows before serving (benchmarks)"
    )
    simulate.add_argument(
        "--contract-exact",
        action="store_true",
        help="leave out every optional field of Spotler's contract the data does not need",
    )
    simulate.set_defaults(run=_simulate)

    migrate = commands.add_parser(
        "migrate-to-lake",
        help="copy the DuckDB-file warehouse into the DuckLake warehouse",
        description="Copy every table and view of the DuckDB-file warehouse into the lake "
        "named by SPOTLER_DUCKLAKE_CATALOG / SPOTLER_DUCKLAKE_DATA_PATH, in one transaction, "
        "and verify the row counts. A file written by DuckDB 2 (release 0.1.0) is converted "
        "first with convert-legacy.",
    )
    _add_warehouse_arguments(migrate)
    migrate.add_argument(
        "--replace",
        action="store_true",
        help="overwrite the lake's tables even if they already have rows",
    )
    migrate.set_defaults(run=_migrate_to_lake)

    convert = commands.add_parser(
        "convert-legacy",
        help="convert the warehouse file of release 0.1.0 (DuckDB 2) for this DuckDB, once",
        description="A warehouse file written by release 0.1.0 (DuckDB 2.0.1) cannot be opened "
        "by this release's DuckDB; runs refuse it and name this command. It installs DuckDB "
        "2.0.1 once into a side folder (pip, its wheels' SHA-256 pinned; SPOTLER_LEGACY_DUCKDB_DIR "
        "chooses the folder), exports every table and view with it, builds the new file, checks "
        "every table's row count and swaps it in; the old file is kept as "
        "<name>.duckdb2-backup. A file that needs nothing is left alone.",
    )
    convert.add_argument(
        "--database", help="the DuckDB file (default: SPOTLER_DUCKDB_PATH or data/spotler.duckdb)"
    )
    convert.set_defaults(run=_convert_legacy)

    adopt = commands.add_parser(
        "adopt-account",
        help="after a key rotation: make the warehouse accept the new consumer key's account",
        description="The warehouse records the Spotler account of the key that first wrote "
        "to it (a fingerprint: a hash of the key) and refuses writes with another account's "
        "key. After a rotation to a new key of the same account, this records the account of "
        "the key in SPOTLER_CONSUMER_KEY instead, leaving every row as it is. Without --yes "
        "it only shows what it would change (exit 1 when the accounts differ). The warehouse "
        "is chosen as the pipeline's resources choose it: the lake when a catalog is named "
        "(--catalog or SPOTLER_DUCKLAKE_CATALOG), else the DuckDB file (--database, "
        "SPOTLER_DUCKDB_PATH or data/spotler.duckdb); --database picks the file whatever the "
        "environment says. The key is never printed.",
    )
    _add_warehouse_arguments(adopt)
    adopt.add_argument("--yes", action="store_true", help="adopt (without it: only show)")
    adopt.set_defaults(run=_adopt_account)

    backfill = commands.add_parser(
        "backfill",
        help="backfill a range of days through the running Dagster webserver, as the UI does",
        description="Launch a partition backfill of the days FROM..TO (inclusive) through the "
        "webserver's GraphQL API, as the UI's Materialize... does, so the daemon runs it (up to "
        "31 days per run, in dependency order, taking turns for the DuckDB file); then follow it "
        "to the end, printing progress. Exits 0 when every run succeeded, 1 when any failed, "
        "2 when it could not be launched.",
    )
    backfill.add_argument(
        "--from",
        dest="first",
        type=_day,
        required=True,
        metavar="DAY",
        help="first day, YYYY-MM-DD (a day in SPOTLER_TIMEZONE)",
    )
    backfill.add_argument(
        "--to",
        dest="last",
        type=_day,
        required=True,
        metavar="DAY",
        help="last day, YYYY-MM-DD, included",
    )
    backfill.add_argument(
        "--group", action="append", help="every asset of this group, e.g. mailings (repeatable)"
    )
    backfill.add_argument(
        "--assets",
        type=lambda s: [a.strip() for a in s.split(",") if a.strip()],
        help="comma-separated tables or asset keys, e.g. mailings,mailing_links",
    )
    backfill.add_argument(
        "--url", help="Dagster webserver (default: DAGSTER_WEBSERVER_URL or http://127.0.0.1:3000)"
    )
    backfill.add_argument("--poll", type=float, default=2.0, help="seconds between checks")
    backfill.add_argument(
        "--timeout", type=float, help="give up following after this many seconds (default: never)"
    )
    backfill.set_defaults(run=_backfill)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "backfill" and not (args.group or args.assets):
        parser.error("backfill: name what to backfill with --group and/or --assets")
    if args.command == "adopt-account" and args.database and args.catalog:
        parser.error("adopt-account: name one warehouse, --database (the file) or --catalog")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
