"""Connections to the DuckDB file spill into folders of their own: a writing run and a check
or notebook spilling at the same time never touch each other's temporary files (DuckDB
names them alike in every instance; with one shared ``.duckdb-spill`` folder they collided),
each folder goes when its connection closes, and a killed process's folder is removed by the
next connection."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from spotler_pipeline.warehouse.connection import SPILL_FOLDER, open_warehouse

#: A sort larger than the connection's memory: DuckDB has to spill it.
SPILLING_SORT = (
    "SELECT count(*) FROM (SELECT i, md5(i::VARCHAR) AS m FROM range(1500000) t(i) ORDER BY m)"
)
SMALL = {"memory_limit": "24MB", "threads": 1}

SPILL_THEN_WAIT = textwrap.dedent(
    f"""
    import sys, time
    from pathlib import Path
    from spotler_pipeline.warehouse.connection import open_warehouse
    database, marker, wait = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    conn = open_warehouse(database, read_only=True, config={SMALL!r})
    (n,) = conn.execute({SPILLING_SORT!r}).fetchone()
    marker.write_text(conn.execute("SELECT current_setting('temp_directory')").fetchone()[0])
    time.sleep(wait)
    (n,) = conn.execute({SPILLING_SORT!r}).fetchone()
    assert n == 1500000, n
    conn.close()
    """
)


def _spill_folder(conn) -> Path:
    return Path(conn.execute("SELECT current_setting('temp_directory')").fetchone()[0])


def test_each_connection_spills_into_its_own_folder_removed_on_close(tmp_path: Path) -> None:
    database = tmp_path / "w.duckdb"
    open_warehouse(database).close()
    base = tmp_path / SPILL_FOLDER
    first = open_warehouse(database, read_only=True, config=SMALL)
    second = open_warehouse(database, read_only=True, config=SMALL)
    try:
        folders = [_spill_folder(c) for c in (first, second)]
        assert folders[0] != folders[1] and {f.parent for f in folders} == {base}
        assert first.execute(SPILLING_SORT).fetchone() == (1_500_000,)
        assert second.execute(SPILLING_SORT).fetchone() == (1_500_000,)
    finally:
        first.close()
        second.close()
    del first, second  # the lock files beside the folders go with the connections
    assert list(base.iterdir()) == []

    # a temp_directory in the config is where the connection's own folder goes
    elsewhere = tmp_path / "spill-here"
    conn = open_warehouse(database, config={"temp_directory": str(elsewhere)})
    try:
        assert _spill_folder(conn).parent == elsewhere
    finally:
        conn.close()


def test_processes_spill_at_once_and_a_killed_ones_folder_is_removed_by_the_next(
    tmp_path: Path,
) -> None:
    database = tmp_path / "w.duckdb"
    open_warehouse(database).close()
    base = tmp_path / SPILL_FOLDER

    def start(marker: Path, wait: float) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", SPILL_THEN_WAIT, str(database), str(marker), str(wait)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    markers = [tmp_path / f"marker-{i}" for i in range(3)]
    victim, *others = [start(m, w) for m, w in zip(markers, (300, 1, 1), strict=True)]
    deadline = time.monotonic() + 240
    while not markers[0].exists():
        assert victim.poll() is None, victim.communicate()[0][-2000:]
        assert time.monotonic() < deadline, "the first process never spilled"
        time.sleep(0.1)
    killed = Path(markers[0].read_text())
    assert killed.is_dir(), "its sort should have spilled"
    # The others sort while the first one's spilled runs are on disk beside them.
    for child in others:
        output = child.communicate(timeout=240)[0]
        assert child.returncode == 0, output[-2000:]
    assert killed.is_dir(), "a living connection's folder is never taken"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert killed.is_dir(), "kill -9: nobody removed it"

    conn = open_warehouse(database, read_only=True)
    try:
        assert not killed.exists()
        assert sorted(p.name for p in base.iterdir()) == sorted(
            [_spill_folder(conn).name + ".lock"]
        )
    finally:
        conn.close()
