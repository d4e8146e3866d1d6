"""``spotler-pipeline simulate`` prints exportable settings and stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx

from spotler_pipeline.cli import build_parser
from spotler_pipeline.simulator.testing import SignedSession


def test_heavy_day_arguments_parse() -> None:
    args = build_parser().parse_args(
        ["simulate", "--scale", "0.5", "--heavy-day", "2025-01-10=1000000"]
    )
    assert args.scale == 0.5 and [(d.isoformat(), n) for d, n in args.heavy_day] == [
        ("2025-01-10", 1_000_000)
    ]


def test_simulate_serves_until_sigterm() -> None:
    command = [sys.executable, "-m", "spotler_pipeline.cli", "simulate", "--scale", "0.001"]
    command += ["--now", "2025-03-01T12:00:00", "--days", "5"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            settings = dict(process.stdout.readline().strip().split("=", 1) for _ in range(3))
            base_url = settings["SPOTLER_BASE_URL"]
            assert base_url.startswith("http://127.0.0.1:")
            with SignedSession(
                base_url, settings["SPOTLER_CONSUMER_KEY"], settings["SPOTLER_CONSUMER_SECRET"]
            ) as api:
                assert api.get("/campaign/list").status_code == 200
            clock = httpx.get(base_url.rsplit("/", 1)[0] + "/_simulator/clock").json()
            assert clock["now"] == "2025-03-01T12:00:00+01:00"
        finally:
            process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
