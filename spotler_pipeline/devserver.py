"""``make dev``: the Dagster UI and daemon against the bundled simulator.

Starts the simulator on loopback, points the ``SPOTLER_*`` variables at it, and runs
``dagster dev`` with a persistent ``DAGSTER_HOME`` in the project folder (``.dagster_home``,
seeded with the project's ``dagster.yaml``), so schedules, sensors and the concurrency pool
work as in production. Set real credentials in the environment to skip the simulator.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def prepare_dagster_home(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT / "dagster.yaml", home / "dagster.yaml")
    return home


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=3000, help="Dagster UI port")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scale", type=float, default=0.05)
    args = parser.parse_args(argv)

    env = dict(os.environ)
    home = prepare_dagster_home(Path(env.get("DAGSTER_HOME") or PROJECT / ".dagster_home"))
    env["DAGSTER_HOME"] = str(home)
    sim = None
    if not (env.get("SPOTLER_CONSUMER_KEY") and env.get("SPOTLER_CONSUMER_SECRET")):
        from spotler_pipeline.simulator import Simulator

        sim = Simulator(seed=args.seed, scale=args.scale).start()
        env.update(
            SPOTLER_BASE_URL=sim.base_url,
            SPOTLER_CONSUMER_KEY=sim.consumer_key,
            SPOTLER_CONSUMER_SECRET=sim.consumer_secret,
        )
        print(f"Simulator serving {sim.base_url}", flush=True)
    cmd = [sys.executable, "-m", "dagster", "dev", "-m", "spotler_pipeline", "-p", str(args.port)]
    print(f"DAGSTER_HOME={home}\nDagster UI on http://127.0.0.1:{args.port}", flush=True)
    try:
        return subprocess.call(cmd, env=env, cwd=PROJECT)
    except KeyboardInterrupt:
        return 0
    finally:
        if sim is not None:
            sim.stop()


if __name__ == "__main__":
    sys.exit(main())
