"""What a user sets wins: ``connection_config`` (memory_limit, threads, temp_directory) on
``WarehouseResource`` reaches every connection, writing and reading, and the write's insert
cap is the resource's ``write_memory_limit`` rather than a constant overriding them."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from spotler_pipeline.defs.resources import WarehouseResource
from spotler_pipeline.warehouse import Replacement
from spotler_pipeline.warehouse import writes as writes_module
from spotler_pipeline.warehouse.mailing_tables import MAILING_OPENS
from spotler_pipeline.warehouse.quality import Window

DAY = date(2025, 5, 3)
MB = 1_000_000


def _settings(conn) -> tuple[str, int, Path]:
    limit, threads, temp = conn.execute(
        "SELECT current_setting('memory_limit'), current_setting('threads'), "
        "current_setting('temp_directory')"
    ).fetchone()
    return limit, int(threads), Path(temp)


def _write(warehouse: WarehouseResource, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One day of opens written through the resource; the memory limits its inserts ran
    under."""
    limits: list[int] = []
    real = writes_module.insert_staged

    def spy(conn, *args, **kwargs) -> int:
        (limit,) = conn.execute("SELECT current_setting('memory_limit')").fetchone()
        limits.append(writes_module.memory_bytes(limit))
        return real(conn, *args, **kwargs)

    monkeypatch.setattr(writes_module, "insert_staged", spy)
    rows = [{"send_day": DAY, "mailing_id": "m", "contact_encrypted_id": "c"}]
    with warehouse.staging() as stage:
        stage.append(MAILING_OPENS, pa.Table.from_pylist(rows, schema=MAILING_OPENS.arrow_schema))
        warehouse.write(
            [Replacement(MAILING_OPENS, stage.files(MAILING_OPENS))],
            Window(DAY, date(2025, 5, 4)),
        )
    return limits


def test_connection_config_wins_over_the_defaults_when_writing_and_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spill = tmp_path / "my-spill"
    warehouse = WarehouseResource(
        database=str(tmp_path / "w.duckdb"),
        connection_config={"memory_limit": "300MB", "threads": 1, "temp_directory": str(spill)},
        write_memory_limit=None,
    )
    with warehouse.get_connection() as conn:
        limit, threads, temp = _settings(conn)
    assert (writes_module.memory_bytes(limit), threads) == (pytest.approx(300 * MB, rel=0.01), 1)
    assert temp.parent == spill  # a folder of the connection's own inside the user's
    # no insert cap: the insert runs under the user's memory_limit
    assert _write(warehouse, monkeypatch) == [pytest.approx(300 * MB, rel=0.01)]
    with warehouse.read() as conn:  # the published copy
        limit, threads, temp = _settings(conn)
    assert (writes_module.memory_bytes(limit), threads) == (pytest.approx(300 * MB, rel=0.01), 1)
    assert temp.parent == spill


def test_the_insert_cap_is_a_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    database = str(tmp_path / "w.duckdb")
    (default,) = _write(WarehouseResource(database=database), monkeypatch)
    (larger,) = _write(
        WarehouseResource(database=database, write_memory_limit="200MB"), monkeypatch
    )
    # each is its cap on top of what the transaction holds (a few MB here)
    assert 48 * MB <= default < 80 * MB
    assert 200 * MB <= larger < 232 * MB
    with pytest.raises(Exception, match="not a memory size"):
        WarehouseResource(database=database, write_memory_limit="lots")


def test_checks_read_under_the_users_memory_limit_when_one_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spotler_pipeline.defs import checks as checks_module

    def limit_in_checks(warehouse: WarehouseResource) -> int:
        _write(warehouse, monkeypatch)
        with checks_module._check_connection(warehouse, checks_module.CHECK_MEMORY_LIMIT) as conn:
            (limit,) = conn.execute("SELECT current_setting('memory_limit')").fetchone()
        return writes_module.memory_bytes(limit)

    mine = WarehouseResource(
        database=str(tmp_path / "mine.duckdb"), connection_config={"memory_limit": "300MB"}
    )
    assert limit_in_checks(mine) == pytest.approx(300 * MB, rel=0.01)
    default = WarehouseResource(database=str(tmp_path / "default.duckdb"))
    assert limit_in_checks(default) == pytest.approx(
        writes_module.memory_bytes(checks_module.CHECK_MEMORY_LIMIT), rel=0.01
    )
