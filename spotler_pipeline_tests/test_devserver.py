"""``make dev`` (``spotler_pipeline.devserver``): ``dg dev`` against the simulator, and a
clean stop whichever process gets the signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from spotler_pipeline import devserver
from spotler_pipeline_tests.e2e_dagster import REPOSITORIES, START_TIMEOUT, free_port

#: Every process ``make dev`` started must be gone this soon after the signal.
STOP_LIMIT_SECONDS = 10.0


def test_dg_dev_is_installed_and_knows_the_project() -> None:
    """``dg`` (dagster-dg-cli) is in this environment and loads the code location."""
    dg = devserver.dg_dev_command(3000)[0]
    out = subprocess.run(
        [dg, "list", "defs", "--json"], cwd=devserver.PROJECT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "spotler/mailings" in out.stdout and "spotler_automation" in out.stdout


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _descendants(pid: int) -> set[int]:
    tree, found, todo = _children(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def make_dev(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], set[int]]]:
    """``make dev`` from this environment, up and serving the code location; yields the make
    process and every process under it."""
    port = free_port()
    venv = Path(sys.prefix)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "SPOTLER_DUCKDB_PATH": str(tmp_path / "data" / "spotler.duckdb"),
    }
    for name in ("SPOTLER_CONSUMER_KEY", "SPOTLER_CONSUMER_SECRET", "SPOTLER_BASE_URL"):
        env.pop(name, None)  # the bundled simulator
    # This environment as the Makefile's, taken as installed (-o: never re-installed here).
    cmd = [
        *("make", "-s", f"VENV={venv}", "-o", f"{venv}/.installed-run"),
        *("dev", f"ARGS=--port {port} --scale 0.005"),
    ]
    log = (tmp_path / "make-dev.log").open("w")
    make = subprocess.Popen(
        cmd,
        cwd=devserver.PROJECT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        # SIGINT handled as in a terminal: a suite started as a background job of a
        # non-interactive shell inherits it ignored, and make would ignore it too.
        preexec_fn=devserver.restore_interrupts,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert make.poll() is None, (tmp_path / "make-dev.log").read_text()
            try:
                body = httpx.post(
                    f"http://127.0.0.1:{port}/graphql", json={"query": REPOSITORIES}, timeout=5
                ).json()
                if body["data"]["repositoriesOrError"].get("nodes"):
                    break
            except (httpx.HTTPError, KeyError, TypeError, ValueError):
                pass
            assert time.monotonic() < deadline, (tmp_path / "make-dev.log").read_text()
            time.sleep(1.0)
        yield make, _descendants(make.pid)
    finally:
        log.close()
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()


def _stopped_within_limit(
    make: subprocess.Popen[str], started: set[int], sent: float, log: Path
) -> int:
    try:
        code = make.wait(STOP_LIMIT_SECONDS * 3)
    except subprocess.TimeoutExpired:
        alive = sorted(_roles({p for p in started if _alive(p)}))
        pytest.fail(
            f"make dev still runs {STOP_LIMIT_SECONDS * 3}s after the signal (alive: {alive}); "
            f"its output:\n{log.read_text()[-3000:]}"
        )
    while any(_alive(p) for p in started) and time.monotonic() - sent < STOP_LIMIT_SECONDS:
        time.sleep(0.1)
    assert [p for p in started if _alive(p)] == []
    assert time.monotonic() - sent < STOP_LIMIT_SECONDS
    return code


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_sigterm_to_the_devserver_stops_everything_and_make_ends_with_0(
    make_dev: tuple[subprocess.Popen[str], set[int]], tmp_path: Path
) -> None:
    make, started = make_dev
    (python,) = [p for p in started if Path(f"/proc/{p}/stat").exists() and _ppid(p) == make.pid]
    assert {"webserver", "daemon", "simulate"} <= _roles(started)
    sent = time.monotonic()
    os.kill(python, signal.SIGTERM)
    assert _stopped_within_limit(make, started, sent, tmp_path / "make-dev.log") == 0
    log = (tmp_path / "make-dev.log").read_text()
    assert "Stopped (SIGTERM)." in log
    # The instance settings are DAGSTER_HOME's only: no dagster.yaml in the working folder.
    assert "will not be used to configure Dagster" not in log


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_sigint_to_make_alone_stops_everything(
    make_dev: tuple[subprocess.Popen[str], set[int]], tmp_path: Path
) -> None:
    """GNU make keeps a SIGINT sent to its PID alone to itself; the devserver sees it and
    stops. make then ends by the signal, as it always does (status -2 here, 130 in a shell):
    that status is make's, not the devserver's, whose own is 0."""
    make, started = make_dev
    sent = time.monotonic()
    make.send_signal(signal.SIGINT)
    assert _stopped_within_limit(make, started, sent, tmp_path / "make-dev.log") == -signal.SIGINT
    assert "Stopped (SIGINT to make)." in (tmp_path / "make-dev.log").read_text()


def _ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _roles(pids: set[int]) -> set[str]:
    """Which of the processes ``make dev`` should start are among ``pids``."""
    roles = set()
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        for role in ("webserver", "daemon", "simulate"):
            if role in cmdline:
                roles.add(role)
    return roles
