"""Notebooks never block the pipeline and are never blocked by it.

Readers open the copy the pipeline publishes after each committed write
(``spotler_pipeline.notebook.connect``), never the pipeline's own file: a reader can hold its
connection while runs write, and sees whole partitions or none.
"""

from __future__ import annotations

import base64
import json
import re
import statistics
import threading
import time
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import nbclient
import nbformat
import pytest

from spotler_pipeline.defs import resources as resources_module
from spotler_pipeline.notebook import connect
from spotler_pipeline.simulator import Simulator
from spotler_pipeline.warehouse.connection import open_warehouse
from spotler_pipeline.warehouse.publish import publish_snapshot, published_path
from spotler_pipeline_tests.notebook_data import (
    INTERACTIONS,
    SNAPSHOT_DAYS,
    fill_warehouse,
    history,
    start_simulator,
)
from spotler_pipeline_tests.pipeline_harness import harness_with_all_groups
from spotler_pipeline_tests.sync import RequestGate

PROJECT = Path(__file__).resolve().parent.parent
NOTEBOOK = PROJECT / "notebooks" / "mailing_performance.ipynb"
ARTIFACTS = PROJECT / "test-artifacts"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = start_simulator()
    try:
        yield simulator
    finally:
        simulator.stop()


def _per_day(con: Any, table: str) -> dict[str, int]:
    rows = con.execute(
        f"SELECT strftime(send_day, '%Y-%m-%d'), count(*) FROM spotler.{table} GROUP BY ALL"
    ).fetchall()
    return dict(rows)


class _Materialisation(threading.Thread):
    """A pipeline run on a background thread (what a schedule does while you read)."""

    def __init__(self, run: Any) -> None:
        super().__init__(daemon=True)
        self._run = run
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self._run()
        except BaseException as exc:  # reported by the test
            self.error = exc


def _save_figures(nb: Any, folder: Path) -> None:
    """Every figure of the executed notebook as ``figure_<n>.png``, to look at without Jupyter."""
    folder.mkdir(parents=True, exist_ok=True)
    images = [
        o["data"]["image/png"]
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.outputs
        if "image/png" in o.get("data", {})
    ]
    for n, image in enumerate(images, 1):
        (folder / f"figure_{n}.png").write_bytes(base64.b64decode(image))


def test_notebook_runs_top_to_bottom_while_a_materialisation_runs(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "warehouse" / "spotler.duckdb"
    harness = fill_warehouse(sim, database)

    # The refresh's requests wait at a gate until the notebook has finished: the run is
    # mid-fetch for the notebook's whole run, however fast or slow the machine is.
    gate = RequestGate("/mailing/")
    refresh = _Materialisation(
        lambda: harness.materialize(INTERACTIONS, days=history(), spotler=harness.spotler(gate))
    )
    refresh.start()
    try:
        assert gate.held.wait(60), "the background materialisation never reached the API"
        assert refresh.is_alive()

        monkeypatch.setenv("SPOTLER_DUCKDB_PATH", str(database))
        nb = nbformat.read(NOTEBOOK, as_version=4)
        started = time.monotonic()
        nbclient.NotebookClient(
            nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        ).execute()
        elapsed = time.monotonic() - started
        # the run holds on to what it holds while fetching: a notebook it blocked would not
        # have finished, and a run that failed or gave up on its requests would be over
        still_running = refresh.is_alive()
    finally:
        gate.release()
    refresh.join(120)
    assert gate.count > 0
    assert refresh.error is None, refresh.error
    assert refresh.result is not None and refresh.result.success
    assert still_running, "the materialisation finished before the notebook did"

    ARTIFACTS.mkdir(exist_ok=True)
    nbformat.write(nb, ARTIFACTS / "mailing_performance.executed.ipynb")
    _save_figures(nb, ARTIFACTS / "notebook")
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    plots = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(plots) == 4, f"expected the four figures, got {len(plots)}"
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "e-mail mailings; median open rate" in text
    # Each mailing followed across its own snapshots, and the day most opens were in.
    followed = f"were followed from their send day for at least 14 days ({SNAPSHOT_DAYS} snapshot"
    assert followed in text
    assert "of the opens were in by day" in text
    assert "not loaded" not in text and "Too few snapshots" not in text
    # The top links are labelled with their mailing's send time, not its day at midnight.
    (links,) = [
        o["data"]["text/plain"]
        for o in outputs
        if "link" in o.get("data", {}).get("text/plain", "")
        and "clickers" in o["data"]["text/plain"]
    ]
    sent = re.findall(r"\d{4}-\d{2}-\d{2} (\d{2}:\d{2}):\d{2}", links)
    assert sent and set(sent) != {"00:00"}
    assert elapsed < 120


def test_a_reader_held_open_never_blocks_a_run_and_sees_only_whole_partitions(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    database = tmp_path / "warehouse" / "spotler.duckdb"
    harness = harness_with_all_groups(sim, database)
    first, last = history()
    middle = first + (last - first) / 2
    early, late = (first, middle), (middle + timedelta(days=1), last)
    assert harness.materialize(["mailings", "mailing_recipients"], days=early).success

    # Time each publish, and when each write committed (the moment a reader could see it).
    publishes: list[float] = []
    commits: list[float] = []
    real_publish, real_replace = resources_module.publish_snapshot, resources_module.replace_window

    def timed_publish(conn: Any, db: Path) -> Path:
        t0 = time.perf_counter()
        try:
            return real_publish(conn, db)
        finally:
            publishes.append(time.perf_counter() - t0)

    def timed_replace(*args: Any, **kwargs: Any) -> Any:
        result = real_replace(*args, **kwargs)
        commits.append(time.perf_counter())
        return result

    monkeypatch.setattr(resources_module, "publish_snapshot", timed_publish)
    monkeypatch.setattr(resources_module, "replace_window", timed_replace)

    held = connect(database)  # a notebook that stays open for the whole run
    held_before = _per_day(held, "mailing_recipients")
    assert held_before

    observations: list[tuple[float, dict[str, int]]] = []
    errors: list[BaseException] = []
    stop = threading.Event()
    run_returned = threading.Event()
    read_after_the_run = threading.Event()  # a whole read begun after the run had returned

    def poll() -> None:
        while not stop.is_set():
            after_the_run = run_returned.is_set()
            try:
                con = connect(database)
                try:
                    observations.append((time.perf_counter(), _per_day(con, "mailing_recipients")))
                finally:
                    con.close()
            except BaseException as exc:
                errors.append(exc)
                read_after_the_run.set()  # nothing more to wait for
                return
            if after_the_run:
                read_after_the_run.set()

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        result = harness.materialize(["mailings", "mailing_recipients"], days=late)
        run_returned.set()
        assert read_after_the_run.wait(60), "the reader stopped reading"
    finally:
        stop.set()
        poller.join(30)
    assert result.success, "a run failed while a reader held the published data open"
    assert not errors, errors

    # The held connection still reads its own snapshot, unchanged and without error.
    assert _per_day(held, "mailing_recipients") == held_before
    held.close()

    final = _per_day(connect(database), "mailing_recipients")
    assert set(final) > set(held_before)
    served = sim.summary()["days"]
    expected = {
        d.isoformat(): served.get(d.isoformat(), {}).get("mailing_recipients", 0)
        for d in (first + timedelta(days=n) for n in range((last - first).days + 1))
    }
    assert final == {d: n for d, n in expected.items() if n}
    # Every observation is a whole state: each day has all of its rows or none of them.
    for _, seen in observations:
        assert all(final[d] == n for d, n in seen.items()), seen
    assert any(seen == final for _, seen in observations)

    # Lag: from the commit of the write until a reader (polling) first saw the new data.
    committed = commits[-1]
    first_seen = min(t for t, seen in observations if seen == final)
    lag = first_seen - committed
    size_mb = database.stat().st_size / 1e6
    report = {
        "database_mb": round(size_mb, 1),
        "publish_seconds": [round(p, 4) for p in publishes],
        "publish_median_seconds": round(statistics.median(publishes), 4),
        "reader_observed_lag_seconds": round(lag, 4),
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "publish_lag.json").write_text(json.dumps(report, indent=2))
    with capsys.disabled():
        print(f"\n[publish lag] {json.dumps(report)}")
    assert 0 < lag < 5.0


def test_publishing_swaps_in_a_whole_copy_and_clears_what_a_killed_run_left(
    tmp_path: Path,
) -> None:
    database = tmp_path / "spotler.duckdb"
    target = published_path(database)
    target.parent.mkdir(parents=True)
    leftover = target.with_name(f".{target.name}.999999.tmp")
    leftover.write_bytes(b"half a copy")
    writer = open_warehouse(database)
    try:
        writer.execute("CREATE SCHEMA spotler")
        writer.execute("CREATE TABLE spotler.t AS SELECT range AS i FROM range(1000)")
        publish_snapshot(writer, database)
        reader = connect(database)
        writer.execute("INSERT INTO spotler.t SELECT range FROM range(5)")
        publish_snapshot(writer, database)
    finally:
        writer.close()
    assert reader.execute("SELECT count(*) FROM spotler.t").fetchall() == [(1000,)]
    reader.close()
    assert connect(database).execute("SELECT count(*) FROM spotler.t").fetchall() == [(1005,)]
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


def _published_one_row(database: Path) -> Path:
    """A warehouse ``database`` with one table of one row, published for readers."""
    writer = open_warehouse(database)
    try:
        writer.execute("CREATE SCHEMA spotler")
        writer.execute("CREATE TABLE spotler.t AS SELECT 1 AS i")
        publish_snapshot(writer, database)
    finally:
        writer.close()
    return database


def test_connect_finds_the_projects_data_from_the_notebooks_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jupyter runs a kernel in the notebook's folder; the default path is the project's."""
    _published_one_row(tmp_path / "data" / "spotler.duckdb")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    monkeypatch.delenv("SPOTLER_DUCKDB_PATH", raising=False)
    con = connect()
    assert con.execute("SELECT i FROM spotler.t").fetchall() == [(1,)]
    # A query turned into a DataFrame prints nothing but its result (pandas and DuckDB agree).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = con.sql("SELECT i, now() AS at, 'x' AS s FROM spotler.t").df()
    assert len(frame) == 1 and [str(w.message) for w in caught] == []
    con.close()
    monkeypatch.chdir(tmp_path.parent)
    with pytest.raises(FileNotFoundError, match="No published Spotler data"):
        connect()


def test_a_notebook_query_is_not_held_to_the_pipelines_memory_cap(tmp_path: Path) -> None:
    """The pipeline's connections are capped (96 MB) to stay small beside Dagster; an
    analyst's is not: a query holding ~240 MB that cannot spill runs."""
    database = _published_one_row(tmp_path / "spotler.duckdb")
    big = "SELECT len(list(i)) FROM range(30000000) t(i)"
    capped = open_warehouse(published_path(database), read_only=True)
    with pytest.raises(duckdb.OutOfMemoryException):
        capped.execute(big).fetchone()
    capped.close()
    con = connect(database)
    assert con.execute(big).fetchone() == (30_000_000,)
    con.close()
