"""Pytest fixtures for a real PostgreSQL: a throwaway server per session, a database per test.

Registered from ``conftest.py`` with
``pytest_plugins = ["spotler_pipeline_tests.conftest_postgres"]`` (test modules that need it
also name it themselves, which is harmless twice).

- ``postgres_server`` (session): a running :class:`~spotler_pipeline_tests.postgres.PostgresServer`
  (``.dsn()``, ``.catalog()``, ``.create_database()``, ``.create_role()``); skips, saying why,
  only when the server binaries are missing and cannot be installed.
- ``ducklake_extensions``: skips where no DuckLake extension can exist (DuckDB 2).
- ``lake_catalog``: the ``SPOTLER_DUCKLAKE_CATALOG`` value of a new, empty database.
- ``lake_settings``: that catalog with a data path in the test's temp folder.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from spotler_pipeline.warehouse.lake import LakeSettings, extension_path
from spotler_pipeline_tests.postgres import (
    PostgresServer,
    PostgresUnavailable,
    ensure_postgres_binaries,
)

_databases = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        bin_dir = ensure_postgres_binaries()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    server = PostgresServer(bin_dir).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def ducklake_extensions() -> None:
    """Skip in a DuckDB 2 environment: the registry has the ``ducklake`` and ``postgres``
    extension wheels for DuckDB 1.5.5 only, and DuckDB cannot download them here. (With
    DuckDB 1.x a missing wheel is a broken install and the lake tests fail, saying so.)"""
    if extension_path("ducklake") is None and int(duckdb.__version__.split(".")[0]) >= 2:
        pytest.skip(f"no DuckLake extension wheel exists for DuckDB {duckdb.__version__}")


@pytest.fixture
def lake_catalog(ducklake_extensions: None, postgres_server: PostgresServer) -> str:
    """A fresh database on the session's server, as a ``postgres:`` DuckLake catalog."""
    return postgres_server.create_database(f"lake_{os.getpid()}_{next(_databases)}")


@pytest.fixture
def lake_settings(lake_catalog: str, tmp_path: Path) -> LakeSettings:
    return LakeSettings(lake_catalog, str(tmp_path / "lake-data"))
