"""On a DuckLake, runs write at the same time: different partitions and the same partition,
in separate processes, against a real PostgreSQL catalog. Rows must equal what the
simulator served, with no duplicates and nothing lost."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

from spotler_pipeline.simulator import Simulator
from spotler_pipeline.warehouse.lake import LakeSettings, open_lake
from spotler_pipeline_tests.conftest import FIXED_NOW
from spotler_pipeline_tests.pipeline_harness import all_groups_settings

INTERACTIONS = ("mailing_recipients", "mailing_opens", "mailing_clicks", "mailing_bounces")

RUN = textwrap.dedent(
    """
    import sys
    import dagster as dg
    from spotler_pipeline.defs.mailing_assets import build_mailing_assets
    from spotler_pipeline.defs.resources import ClockResource, SpotlerResource, WarehouseResource
    from spotler_pipeline_tests.pipeline_harness import MAILING_ASSETS, all_groups_settings

    base_url, key, secret, now, catalog, data_path, database, day = sys.argv[1:9]
    settings = all_groups_settings()
    assets = build_mailing_assets(settings)
    result = dg.materialize(
        [a for a in assets if any(k.path[-1] in MAILING_ASSETS for k in a.keys)],
        selection=[dg.AssetKey(["spotler", n]) for n in MAILING_ASSETS],
        partition_key=day,
        resources={
            "spotler": SpotlerResource(
                consumer_key=key, consumer_secret=secret, base_url=base_url,
                timezone=settings.timezone, max_concurrent_requests=2,
            ),
            "warehouse": WarehouseResource(
                database=database, ducklake_catalog=catalog, ducklake_data_path=data_path
            ),
            "clock": ClockResource(fixed_now=now),
        },
    )
    sys.exit(0 if result.success else 1)
    """
)


def test_concurrent_runs_of_different_and_the_same_partitions_all_land(
    lake_settings: LakeSettings, tmp_path: Path
) -> None:
    # a lake deployment's writing steps share only the API pool, not the file's one slot
    assert all_groups_settings().pool == "spotler_duckdb"
    assert dataclasses.replace(all_groups_settings(), lake=True).pool == "spotler_api"
    with Simulator(seed=11, scale=0.01, now=FIXED_NOW, days=21) as sim:
        today = sim.now.date()
        days = [today - timedelta(days=n) for n in (1, 2, 3)]
        runs = [*days, days[0]]  # three different days, and the first one twice at once
        env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster_home")}
        children = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    RUN,
                    sim.base_url,
                    sim.consumer_key,
                    sim.consumer_secret,
                    sim.now.isoformat(),
                    lake_settings.catalog,
                    str(lake_settings.data_path),
                    str(tmp_path / "unused.duckdb"),
                    day.isoformat(),
                ],
                env=env,
                cwd=Path(__file__).resolve().parent.parent,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for day in runs
        ]
        outputs = [c.communicate(timeout=600)[0] for c in children]
        for child, output in zip(children, outputs, strict=True):
            assert child.returncode == 0, output[-3000:]
        truth = sim.summary()["days"]

    conn = open_lake(lake_settings, read_only=True)
    try:
        for table in INTERACTIONS:
            stored = dict(
                conn.execute(
                    f"SELECT send_day, count(*) FROM spotler.{table} GROUP BY 1"
                ).fetchall()
            )
            expected = {d: truth.get(d.isoformat(), {}).get(table, 0) for d in days}
            assert {d: stored.get(d, 0) for d in days} == expected, table
            assert set(stored) <= set(days), table
        duplicated = conn.execute(
            "SELECT count(*) FROM (SELECT mailing_id, contact_encrypted_id FROM "
            "spotler.mailing_recipients GROUP BY ALL HAVING count(*) > 1)"
        ).fetchone()
        assert duplicated == (0,)
        snapshots = conn.execute("SELECT count(*) FROM lake.snapshots()").fetchone()
        assert snapshots is not None and snapshots[0] > len(runs)  # every run committed
    finally:
        conn.close()
    assert not (tmp_path / "unused.duckdb").exists(), "the lake runs must not touch the file"
