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
    command += ["--now", "2025-03-01T12:00:00", "--days", "5", "--contract-exact"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            lines = [process.stdout.readline().strip() for _ in range(3)]
            assert all(line.startswith("export SPOTLER_") for line in lines), lines
            settings = dict(line.removeprefix("export ").split("=", 1) for line in lines)
            # A shell that runs the lines passes the settings on to the programs it starts.
            child = subprocess.run(
                ["sh", "-c", "\n".join([*lines, "printenv SPOTLER_BASE_URL"])],
                capture_output=True,
                text=True,
                check=True,
                env={"PATH": "/usr/bin:/bin"},
            )
            assert child.stdout.strip() == settings["SPOTLER_BASE_URL"]
            base_url = settings["SPOTLER_BASE_URL"]
            assert base_url.startswith("http://127.0.0.1:")
            with SignedSession(
                base_url, settings["SPOTLER_CONSUMER_KEY"], settings["SPOTLER_CONSUMER_SECRET"]
            ) as api:
                assert api.get("/campaign/list").status_code == 200
                window = {"fromDate": "2025-02-24T00:00:00", "toDate": "2025-03-01T12:00:00"}
                listing = api.json("/mailing", window)
                assert listing and not any("archiveLink" in m for m in listing)  # left out
            clock = httpx.get(base_url.rsplit("/", 1)[0] + "/_simulator/clock").json()
            assert clock["now"] == "2025-03-01T12:00:00+01:00"
        finally:
            process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_simulate_stops_on_sigterm_while_pre_rendering() -> None:
    """``--prewarm`` renders every row before serving (minutes at the benchmark's scale); a
    stop signal in that time stops it then, instead of after the render."""
    command = [sys.executable, "-m", "spotler_pipeline.cli", "simulate", "--scale", "0.001"]
    command += ["--now", "2025-03-01T12:00:00", "--days", "5", "--prewarm"]
    command += ["--heavy-day", "2025-03-01=50000000"]  # well over a minute to render here
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stderr is not None
            said = ""
            while not said.startswith("# pre-rendering"):
                said = process.stderr.readline()
                assert said, "the simulator ended before it said it was pre-rendering"
            process.send_signal(signal.SIGTERM)
            # Without the stop it renders on for minutes (and gigabytes) before it exits.
            assert process.wait(timeout=30) == 1
            out, err = process.communicate()
        finally:
            process.kill()
    assert "export" not in out
    assert "# stopped by SIGTERM before serving" in err
