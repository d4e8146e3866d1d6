"""``make dev``: the Dagster UI and daemon against the bundled simulator.

Starts the simulator in its own process on loopback (in-process it would compete with the
webserver for the GIL), points the ``SPOTLER_*`` variables at it, and runs ``dagster dev``
with a persistent ``DAGSTER_HOME`` in the project folder (``.dagster_home``, seeded with
``deploy/local/dagster.yaml``), so schedules, sensors and the concurrency pool work as in
production: the schedules and sensors are on from the start. Set real credentials in the
environment to skip the simulator.

The UI runs through ``dg dev`` (Dagster's recommended command line; it reads ``[tool.dg]`` in
``pyproject.toml``); ``dagster dev -m spotler_pipeline`` still works the same. Ctrl-C, SIGTERM
or SIGHUP, to this process or to the ``make`` running it, stop the webserver, daemon, code
server and simulator within seconds, and this process ends with status 0: stopping is not an
error.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
#: The instance settings copied into ``DAGSTER_HOME`` (one machine, the DuckDB file).
INSTANCE_YAML = PROJECT / "deploy" / "local" / "dagster.yaml"
_SIMULATOR_VARS = ("SPOTLER_BASE_URL", "SPOTLER_CONSUMER_KEY", "SPOTLER_CONSUMER_SECRET")


def prepare_dagster_home(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(INSTANCE_YAML, home / "dagster.yaml")
    return home


def restore_interrupts() -> None:
    """``preexec_fn`` for ``dagster dev``: a shell starts background jobs with SIGINT ignored,
    and ``dagster dev`` maps SIGTERM to its SIGINT handler, so it would then ignore both and
    never shut down its webserver and daemon. Restored, either signal stops it cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@dataclass
class SimulatorProcess:
    """``spotler-pipeline simulate`` running in a child process (its own process group)."""

    process: subprocess.Popen[str]
    env: dict[str, str]

    @property
    def base_url(self) -> str:
        return self.env["SPOTLER_BASE_URL"]

    @property
    def admin_url(self) -> str:
        base = self.base_url
        return base[: base.index("/integrationservice")] + "/_simulator"

    def stop(self, grace: float = 5.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_simulator_process(
    *, seed: int, scale: float, days: int | None = None, port: int = 0, prewarm: bool = False
) -> SimulatorProcess:
    """Start the simulator CLI and return once it printed its ``SPOTLER_*`` variables
    (with ``prewarm``, once it rendered every row first)."""
    cmd = [
        *(sys.executable, "-m", "spotler_pipeline.cli", "simulate"),
        *(f"--port={port}", f"--seed={seed}", f"--scale={scale}"),
        *([f"--days={days}"] if days is not None else []),
        *(["--prewarm"] if prewarm else []),
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=PROJECT,
        start_new_session=True,  # a Ctrl-C in the terminal reaches dagster dev, which stops first
    )
    assert proc.stdout is not None
    env: dict[str, str] = {}
    while len(env) < len(_SIMULATOR_VARS):
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the simulator exited with status {proc.wait()}")
        name, sep, value = line.strip().removeprefix("export ").partition("=")
        if sep and name in _SIMULATOR_VARS:
            env[name] = shlex.split(value)[0]  # the CLI prints shell-quoted values
    return SimulatorProcess(proc, env)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=3000, help="Dagster UI port")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scale", type=float, default=0.05)
    args = parser.parse_args(argv)

    stop = StopRequest()
    for signum in STOP_SIGNALS:
        signal.signal(signum, stop.on_signal)
    env = dict(os.environ)
    home = prepare_dagster_home(Path(env.get("DAGSTER_HOME") or PROJECT / ".dagster_home"))
    env["DAGSTER_HOME"] = str(home)
    sim = None
    dagster = None
    try:
        if not (env.get("SPOTLER_CONSUMER_KEY") and env.get("SPOTLER_CONSUMER_SECRET")):
            sim = start_simulator_process(seed=args.seed, scale=args.scale)
            env.update(sim.env)
            print(f"Simulator serving {sim.base_url} (admin: {sim.admin_url})", flush=True)
        if not stop.reason:
            print(f"DAGSTER_HOME={home}\nDagster UI on http://127.0.0.1:{args.port}", flush=True)
            dagster = subprocess.Popen(
                dg_dev_command(args.port),
                env=env,
                cwd=PROJECT,
                preexec_fn=restore_interrupts,
                # Its own process group: stopped below as one, whoever got the signal.
                start_new_session=True,
            )
            while dagster.poll() is None and not stop.wait(0.5):
                stop.watch_parent()
    finally:
        if dagster is not None:
            stop_process_group(dagster)
        if sim is not None:
            sim.stop()
    if stop.reason:
        # Asked to stop, and stopped: not a failure (`make dev` would print "Error 1").
        print(f"Stopped ({stop.reason}).", flush=True)
        return 0
    return dagster.returncode if dagster is not None else 1


#: The signals that stop ``make dev``: Ctrl-C, a process manager, a closed terminal.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: How long ``dagster dev`` gets to stop its webserver, daemon and code servers itself.
STOP_GRACE_SECONDS = 6.0


class StopRequest:
    """Why ``make dev`` should stop: a signal to this process, or one to ``make`` itself.

    GNU make passes SIGTERM on to the recipe it runs, but not SIGINT sent to its own PID
    alone (it expects the whole process group to have had it, as with Ctrl-C): it then waits
    for the recipe to end inside its signal handler, where the kernel blocks that signal.
    :meth:`watch_parent` sees that block in ``/proc`` and stops as if the signal had come
    here. (make itself then ends by the signal: status 130 or 143, its own choice.)
    """

    def __init__(self) -> None:
        self.reason = ""
        self._event = threading.Event()
        self._parent = os.getppid()

    def on_signal(self, signum: int, frame: object) -> None:
        self.reason = self.reason or signal.Signals(signum).name
        self._event.set()

    def wait(self, seconds: float) -> bool:
        return self._event.wait(seconds)

    def watch_parent(self) -> None:
        """Stop when the parent ``make`` is handling SIGINT or SIGTERM (Linux only)."""
        proc = Path(f"/proc/{self._parent}")
        try:
            if proc.joinpath("comm").read_text().strip() not in ("make", "gmake"):
                return
            status = proc.joinpath("status").read_text()
        except OSError:
            return
        blocked = next(
            (
                int(line.split()[1], 16)
                for line in status.splitlines()
                if line.startswith("SigBlk:")
            ),
            0,
        )
        for signum in (signal.SIGINT, signal.SIGTERM):
            if blocked & (1 << (signum - 1)):
                self.reason = self.reason or f"{signum.name} to make"
                self._event.set()


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """Stop ``process`` and everything it started (its process group), as Ctrl-C in its
    terminal would; whatever still runs after :data:`STOP_GRACE_SECONDS` is killed."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while time.monotonic() < deadline and _group_alive(process):
        time.sleep(0.1)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _group_alive(process: subprocess.Popen[bytes]) -> bool:
    process.poll()  # reap the leader once it exits; its group lives on while a member does
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return True


def dg_dev_command(port: int) -> list[str]:
    """``dg dev`` from this environment (the project's code location, see ``[tool.dg]``)."""
    dg = Path(sys.executable).with_name("dg")
    return [str(dg), "dev", "--use-active-venv", "-p", str(port)]


if __name__ == "__main__":
    sys.exit(main())
