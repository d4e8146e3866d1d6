"""Spotler (MailPlus) reporting data in DuckDB, as a Dagster code location.

Layers (each importable on its own):

- ``spotler_pipeline.client``: the HTTP client for Spotler's REST API (no Dagster).
- ``spotler_pipeline.simulator``: a local Spotler-compatible API for tests, demo and benchmark.
- ``spotler_pipeline.warehouse``: DuckDB tables, atomic partition writes, views (no HTTP).
- ``spotler_pipeline.defs``: the Dagster assets, checks, schedules and resources joining the two.

``dagster dev -m spotler_pipeline`` finds :data:`defs` here.
"""

from spotler_pipeline.definitions import defs

__all__ = ["defs"]
