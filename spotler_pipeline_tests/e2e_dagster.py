"""The real thing for end-to-end tests: the simulator and ``dagster dev`` as separate processes.

:class:`DagsterDev` starts ``spotler-pipeline simulate`` and ``dagster dev`` (webserver and
daemon, with ``deploy/local/dagster.yaml`` in a temporary ``DAGSTER_HOME`` and a temporary
``SPOTLER_DUCKDB_PATH``) and talks to the webserver through the GraphQL API the UI uses.
:func:`shared_dagster` keeps one instance for the whole test session, so the backfill test
and the browser test share a server (and the browser sees the backfilled assets).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

# The GraphQL the `spotler-pipeline backfill` command sends is the one home of these queries.
from spotler_pipeline.backfill import ASSET_NODES, RUNS
from spotler_pipeline.backfill import FINISHED_RUN_STATUSES as FINISHED_RUN_STATUSES
from spotler_pipeline.backfill import LAUNCH as LAUNCH_BACKFILL
from spotler_pipeline.backfill import STATUS as BACKFILL_STATUS
from spotler_pipeline.devserver import (
    PROJECT,
    SimulatorProcess,
    prepare_dagster_home,
    restore_interrupts,
    start_simulator_process,
)

TIMEZONE = "Europe/Amsterdam"
#: A small account: a 30-day backfill of it takes well under a minute of run time.
SIM_SCALE = 0.02
SIM_SEED = 5
SIM_DAYS = 40
START_TIMEOUT = 180.0

LAUNCH_RUN = """
mutation LaunchRun($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}
"""

REPOSITORIES = """
query Repos {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection { nodes { name location { name } } }
    ... on PythonError { message }
  }
}
"""

MATERIALIZED_KEYS = """
query Materialized($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    __typename
    ... on AssetNode {
      assetPartitionStatuses {
        __typename
        ... on TimePartitionStatuses { ranges { status startKey endKey } }
        ... on DefaultPartitionStatuses { materializedPartitions }
      }
    }
  }
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_group(cmd: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """Start ``cmd`` in its own process group, so stopping it also stops its children;
    SIGTERM then shuts ``dagster dev`` down cleanly (see ``restore_interrupts``)."""
    return subprocess.Popen(
        list(cmd), start_new_session=True, preexec_fn=restore_interrupts, **kwargs
    )


def _stop_group(proc: subprocess.Popen[Any] | None, grace: float = 20.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    except ProcessLookupError:
        pass


class GraphQLError(AssertionError):
    pass


class DagsterDev:
    """The simulator and ``dagster dev`` in a temporary directory; see the module docstring."""

    def __init__(self, root: Path, *, scale: float = SIM_SCALE, seed: int = SIM_SEED) -> None:
        self.root = root
        self.scale, self.seed = scale, seed
        self.home = root / "dagster_home"
        self.database = root / "warehouse" / "spotler.duckdb"
        self.log_path = root / "dagster_dev.log"
        self.port = free_port()
        self.sim: SimulatorProcess | None = None
        self.dagster_proc: subprocess.Popen[bytes] | None = None
        self.sim_env: dict[str, str] = {}
        self.admin_url = ""
        self.location = "spotler_pipeline"
        self.repository = "__repository__"
        self._http = httpx.Client(timeout=60.0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def today(self) -> date:
        return datetime.now(ZoneInfo(TIMEZONE)).date()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> DagsterDev:
        try:
            self._start_simulator()
            self._start_dagster()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_simulator(self) -> None:
        self.sim = start_simulator_process(seed=self.seed, scale=self.scale, days=SIM_DAYS)
        self.sim_env = dict(self.sim.env)
        self.admin_url = self.sim.admin_url

    def _start_dagster(self) -> None:
        prepare_dagster_home(self.home)
        self.database.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            **self.sim_env,
            "DAGSTER_HOME": str(self.home),
            "SPOTLER_DUCKDB_PATH": str(self.database),
            "SPOTLER_TIMEZONE": TIMEZONE,
            "SPOTLER_PARTITIONS_START": (self.today - timedelta(days=SIM_DAYS)).isoformat(),
            "PYTHONUNBUFFERED": "1",
        }
        cmd = [
            *(sys.executable, "-m", "dagster", "dev", "-m", "spotler_pipeline"),
            *("-h", "127.0.0.1", "-p", str(self.port)),
        ]
        log = self.log_path.open("wb")
        self.dagster_proc = _start_group(cmd, env=env, cwd=PROJECT, stdout=log, stderr=log)
        log.close()
        self._wait_until_loaded()

    def _wait_until_loaded(self) -> None:
        """Poll the webserver until it serves the code location (names kept for GraphQL)."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.dagster_proc is not None and self.dagster_proc.poll() is not None:
                raise RuntimeError(f"dagster dev exited early; see {self.log_path}:\n{self.log()}")
            try:
                nodes = self.graphql(REPOSITORIES)["repositoriesOrError"].get("nodes") or []
                if nodes:
                    self.location = nodes[0]["location"]["name"]
                    self.repository = nodes[0]["name"]
                    return
            except (httpx.HTTPError, GraphQLError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"dagster dev did not load the code location:\n{self.log()}")
            time.sleep(1.0)

    def stop(self) -> None:
        _stop_group(self.dagster_proc)
        if self.sim is not None:
            self.sim.stop()
        self._http.close()

    def log(self, tail: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    # -- GraphQL ---------------------------------------------------------------------------

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        response = self._http.post(
            f"{self.url}/graphql", json={"query": query, "variables": dict(variables or {})}
        )
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise GraphQLError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def launch_backfill(self, assets: Sequence[str], partitions: Sequence[str]) -> str:
        params = {
            "assetSelection": [{"path": ["spotler", name]} for name in assets],
            "partitionNames": list(partitions),
            "fromFailure": False,
            "tags": [{"key": "e2e", "value": "backfill"}],
        }
        result = self.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise GraphQLError(f"launchPartitionBackfill failed: {result}")
        return str(result["backfillId"])

    def backfill(self, backfill_id: str) -> dict[str, Any]:
        data = self.graphql(BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        if data["__typename"] != "PartitionBackfill":
            raise GraphQLError(f"backfill {backfill_id}: {data}")
        return data

    def launch_job(self, job: str, tags: Mapping[str, str]) -> str:
        params = {
            "selector": {
                "repositoryLocationName": self.location,
                "repositoryName": self.repository,
                "jobName": job,
            },
            "runConfigData": {},
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        }
        result = self.graphql(LAUNCH_RUN, {"params": params})["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            raise GraphQLError(f"launchRun {job} failed: {result}")
        return str(result["run"]["runId"])

    def runs(self, **run_filter: Any) -> list[dict[str, Any]]:
        data = self.graphql(RUNS, {"filter": run_filter or None})["runsOrError"]
        if data["__typename"] != "Runs":
            raise GraphQLError(f"runs: {data}")
        return list(data["results"])

    def backfill_runs(self, backfill_id: str) -> list[dict[str, Any]]:
        return self.runs(tags=[{"key": "dagster/backfill", "value": backfill_id}])

    def asset_nodes(self) -> dict[str, dict[str, Any]]:
        return {"/".join(n["assetKey"]["path"]): n for n in self.graphql(ASSET_NODES)["assetNodes"]}

    def materialized_partitions(self, asset: str) -> set[str]:
        """Partition keys of ``spotler/<asset>`` whose latest materialisation succeeded."""
        data = self.graphql(MATERIALIZED_KEYS, {"key": {"path": ["spotler", asset]}})
        statuses = data["assetNodeOrError"]["assetPartitionStatuses"]
        if statuses["__typename"] == "DefaultPartitionStatuses":
            return set(statuses["materializedPartitions"])
        keys: set[str] = set()
        for r in statuses["ranges"]:
            if r["status"] != "MATERIALIZED":
                continue
            day, last = date.fromisoformat(r["startKey"]), date.fromisoformat(r["endKey"])
            while day <= last:
                keys.add(day.isoformat())
                day += timedelta(days=1)
        return keys

    def wait_for(
        self, what: str, ready: Callable[[], Any], timeout: float, interval: float = 2.0
    ) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = ready()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(interval)

    # -- the simulator -----------------------------------------------------------------------

    def simulator_summary(self) -> dict[str, Any]:
        response = self._http.get(f"{self.admin_url}/summary")
        response.raise_for_status()
        return dict(response.json())


_SHARED: DagsterDev | None = None


def shared_dagster() -> DagsterDev:
    """One :class:`DagsterDev` per test session, stopped when the session's process exits."""
    global _SHARED
    if _SHARED is None:
        root = Path(tempfile.mkdtemp(prefix="spotler-e2e-"))
        instance = DagsterDev(root).start()

        def _cleanup() -> None:
            instance.stop()
            shutil.rmtree(root, ignore_errors=True)

        atexit.register(_cleanup)
        _SHARED = instance
    return _SHARED
