"""Lake connections in several processes spill at the same time without touching each other's
temporary files: each spills into a folder of its own (DuckDB names its temporary files alike
in every instance, and with one shared folder four concurrent lake runs failed with "Could not
remove file .../duckdb_temp_storage_S224K-0.tmp")."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from spotler_pipeline.warehouse.lake import LakeSettings, open_lake, spill_directory

SPILL = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from spotler_pipeline.warehouse.lake import LakeSettings, open_lake, spill_directory
    catalog, data_path, base = sys.argv[1:4]
    for _ in range(2):
        # What open_lake does by default, under the test's folder to look into afterwards.
        folder = spill_directory(Path(base))
        config = {"memory_limit": "48MB", "threads": 1, "temp_directory": folder}
        conn = open_lake(LakeSettings(catalog, data_path), config=config)
        (n,) = conn.execute(
            "SELECT count(*) FROM (SELECT i, md5(i::VARCHAR) AS m FROM range(2000000) t(i) "
            "ORDER BY m)"
        ).fetchone()
        assert n == 2000000, n
        conn.close()
    """
)


def test_each_connection_spills_into_a_folder_of_its_own(
    lake_settings: LakeSettings, tmp_path: Path
) -> None:
    base = tmp_path / "spill"
    assert spill_directory(base) != spill_directory(base)
    first, second = (open_lake(lake_settings) for _ in range(2))
    try:
        folders = {
            c.execute("SELECT current_setting('temp_directory')").fetchone()[0]
            for c in (first, second)
        }
        assert len(folders) == 2, folders
    finally:
        first.close()
        second.close()

    # Three processes sorting more than their memory at once: every sort completes, and
    # DuckDB removes each connection's folder when it closes.
    children = [
        subprocess.Popen(
            [sys.executable, "-c", SPILL, lake_settings.catalog, str(lake_settings.data_path)]
            + [str(base)],
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [c.communicate(timeout=240)[0] for c in children]
    for child, output in zip(children, outputs, strict=True):
        assert child.returncode == 0, output[-2000:]
    assert base.is_dir() and list(base.iterdir()) == []
