"""Spotler (MailPlus) reporting data in DuckDB, as a Dagster code location.

Layers (each importable on its own):

- ``spotler_pipeline.client``: the HTTP client for Spotler's REST API (no Dagster).
- ``spotler_pipeline.row_layouts``: the columns the API's bulk rows become; plain data that
  the client and the warehouse both read, so neither imports the other.
- ``spotler_pipeline.records``: the catalogue and contact-history records, each field
  declared once (JSON key, kind, column, description); plain data, read by both layers.
- ``spotler_pipeline.simulator``: a local Spotler-compatible API for tests, demo and benchmark.
- ``spotler_pipeline.warehouse``: DuckDB tables, atomic partition writes, views (no HTTP).
- ``spotler_pipeline.defs``: the Dagster assets, checks, schedules and resources joining the two.
- ``spotler_pipeline.notebook``: ``connect()`` for analysts (no Dagster).

``dagster dev -m spotler_pipeline`` (and ``dg``, through ``[tool.dg]`` in ``pyproject.toml``)
finds :data:`defs` here. It is built on first access, not on import, so that importing the
client or the notebook helper neither imports Dagster nor builds every definition.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import dagster as dg

    defs: dg.Definitions

__all__ = ["defs"]


def __getattr__(name: str) -> Any:
    if name == "defs":
        from spotler_pipeline.definitions import defs

        # Importing the definitions imports the subpackage ``spotler_pipeline.defs``, which
        # binds that name here to the subpackage; the code location's ``defs`` wins.
        globals()["defs"] = defs
        return defs
    raise AttributeError(f"module 'spotler_pipeline' has no attribute {name!r}")


def __dir__() -> list[str]:
    # Dagster finds the code location's Definitions by listing the module's attributes.
    return sorted({*globals(), "defs"})
