"""The warehouse layer: DuckDB tables, staging of fetched pages, atomic writes, views.

Knows nothing of HTTP or Dagster: it takes Arrow batches and DuckDB connections.
"""

from spotler_pipeline.warehouse.catalog import ALL_TABLES, TABLES
from spotler_pipeline.warehouse.ddl import ensure_schema
from spotler_pipeline.warehouse.model import SCHEMA, Column, Table
from spotler_pipeline.warehouse.staging import StagingArea, conform, drop_repeated
from spotler_pipeline.warehouse.writes import (
    Absent,
    Replacement,
    Scope,
    WriteResult,
    replace_window,
)

__all__ = [
    "ALL_TABLES",
    "Absent",
    "SCHEMA",
    "TABLES",
    "Column",
    "Replacement",
    "Scope",
    "StagingArea",
    "Table",
    "WriteResult",
    "conform",
    "drop_repeated",
    "ensure_schema",
    "replace_window",
]
