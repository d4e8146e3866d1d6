"""``make demo``: fill ``data/spotler.duckdb`` from the bundled simulator and summarise it.

Loads the mailing assets for the last 7 send days, then takes statistics snapshots on three
consecutive days, moving the simulator's clock and the pipeline's clock together (and
refreshing the interactions each day, as the daily schedule would, so late opens land).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg

from spotler_pipeline.defs.config import DEFAULT_DUCKDB_PATH, DeploymentSettings
from spotler_pipeline.defs.metadata import RANGE_END_TAG, RANGE_START_TAG
from spotler_pipeline.defs.resources import ClockResource, SpotlerResource, WarehouseResource
from spotler_pipeline.simulator import Simulator
from spotler_pipeline.warehouse.connection import open_warehouse

SEND_DAYS = 7
SNAPSHOT_DAYS = 3
#: Contacts whose API history the demo reads (the daily asset reads every active contact).
DEMO_CONTACTS = 300

MAILING_ASSETS = [
    "mailings",
    "mailing_links",
    "mailing_recipients",
    "mailing_opens",
    "mailing_clicks",
    "mailing_bounces",
]
CATALOGUES = [
    "campaigns",
    "campaign_triggers",
    "campaign_mailings",
    "campaign_mailing_links",
    "forms",
]
CAMPAIGN_INTERACTIONS = [
    "campaign_mailing_recipients",
    "campaign_mailing_opens",
    "campaign_mailing_clicks",
    "campaign_mailing_bounces",
]
FORM_RESULTS = ["form_results", "form_answers"]
CONTACT_HISTORIES = [
    "contact_mailing_history",
    "contact_campaign_mailing_history",
    "contact_form_history",
]


def _resources(sim: Simulator, database: str, now: datetime, tz: str) -> dict[str, object]:
    return {
        "spotler": SpotlerResource(
            consumer_key=sim.consumer_key,
            consumer_secret=sim.consumer_secret,
            base_url=sim.base_url,
            timezone=tz,
        ),
        "warehouse": WarehouseResource(database=database),
        "clock": ClockResource(fixed_now=now.isoformat()),
    }


def _materialize(
    defs: dg.Definitions,
    selection: Sequence[str],
    resources: dict[str, object],
    *,
    tags: dict[str, str] | None = None,
    partition_key: str | None = None,
    ops_config: dict[str, object] | None = None,
) -> None:
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    keys = [dg.AssetKey(["spotler", name]) for name in selection]
    chosen = [a for a in assets if set(a.keys) & set(keys)]
    result = dg.materialize(
        chosen,
        selection=keys,
        resources=resources,
        tags=tags,
        partition_key=partition_key,
        run_config={
            "loggers": {"console": {"config": {"log_level": "WARNING"}}},
            **({"ops": ops_config} if ops_config else {}),
        },
    )
    if not result.success:
        raise SystemExit("demo run failed; see the log above")


def summary(database: str) -> str:
    con = open_warehouse(database, read_only=True)
    try:
        lines = ["", "Rows per table (schema spotler):"]
        for (name,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'spotler' "
            "AND table_type = 'BASE TABLE' ORDER BY table_name"
        ).fetchall():
            (n,) = con.execute(f'SELECT count(*) FROM spotler."{name}"').fetchone()  # type: ignore[misc]
            lines.append(f"  {name:<36} {n:>12,}")
        ranked = con.execute(
            """
            SELECT m.name, m.type, s.sent_count, s.click_count,
                   s.click_count / nullif(s.sent_count, 0) AS click_rate
            FROM spotler.mailing_stats_latest s
            JOIN spotler.mailings m ON m.encrypted_id = s.mailing_id
            WHERE m.type = 'EMAIL' AND s.sent_count > 0
            ORDER BY click_rate DESC
            """
        ).fetchall()
        if ranked:
            best, worst = ranked[0], ranked[-1]
            lines.append("")
            lines.append(f"Best click rate:  {best[0]} ({best[4]:.2%} of {best[2]:,} recipients)")
            lines.append(
                f"Worst click rate: {worst[0]} ({worst[4]:.2%} of {worst[2]:,} recipients)"
            )
        campaign = con.execute(
            "SELECT campaign_name, campaign_mailing_name, sum(sends) FROM "
            "spotler.campaign_mailing_daily GROUP BY ALL ORDER BY 3 DESC LIMIT 1"
        ).fetchone()
        if campaign:
            lines.append(
                f"Busiest campaign step: {campaign[0]} / {campaign[1]} ({campaign[2]:,} sends)"
            )
        form = con.execute(
            "SELECT form_name, sum(submissions) FROM spotler.form_response_summary "
            "GROUP BY ALL ORDER BY 2 DESC LIMIT 1"
        ).fetchone()
        if form:
            lines.append(
                f"Most answered form:    {form[0]} ({form[1]:,} submissions, tests excluded)"
            )
        return "\n".join(lines)
    finally:
        con.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--database", default=os.environ.get("SPOTLER_DUCKDB_PATH", DEFAULT_DUCKDB_PATH)
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scale", type=float, default=0.05)
    args = parser.parse_args(argv)

    from spotler_pipeline.definitions import build_definitions

    settings = DeploymentSettings.from_env()
    tz = ZoneInfo(settings.timezone)
    defs = build_definitions(settings)
    Path(args.database).parent.mkdir(parents=True, exist_ok=True)
    today = datetime.now(tz).replace(hour=8, minute=0, second=0, microsecond=0)
    first_clock = today - timedelta(days=SNAPSHOT_DAYS - 1)
    started = time.monotonic()
    with Simulator(seed=args.seed, scale=args.scale, now=first_clock) as sim:
        print(f"Simulator at {sim.base_url} (seed {args.seed}, scale {args.scale})")
        for day in range(SNAPSHOT_DAYS):
            now = first_clock + timedelta(days=day)
            sim.set_now(now)
            resources = _resources(sim, args.database, now, settings.timezone)
            first = (first_clock - timedelta(days=SEND_DAYS - 1)).date().isoformat()
            last = now.date().isoformat()
            window = {RANGE_START_TAG: first, RANGE_END_TAG: last}
            print(f"[{now:%Y-%m-%d %H:%M}] loading send days {first} .. {last}")
            _materialize(defs, MAILING_ASSETS, resources, tags=window)
            print(f"[{now:%Y-%m-%d %H:%M}] campaigns, forms and their events {first} .. {last}")
            _materialize(defs, CATALOGUES, resources)
            _materialize(defs, CAMPAIGN_INTERACTIONS, resources, tags=window)
            _materialize(defs, FORM_RESULTS, resources, tags=window)
            print(f"[{now:%Y-%m-%d %H:%M}] statistics snapshot {last}")
            _materialize(defs, ["mailing_stats_snapshots"], resources, partition_key=last)
        print(f"[{now:%Y-%m-%d %H:%M}] contact histories of {DEMO_CONTACTS} contacts active {last}")
        _materialize(
            defs,
            CONTACT_HISTORIES,
            resources,
            partition_key=last,
            ops_config={
                "spotler_contact_histories": {"config": {"max_contacts_per_day": DEMO_CONTACTS}}
            },
        )
    print(summary(args.database))
    print(f"\nDone in {time.monotonic() - started:.0f}s: {args.database}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
