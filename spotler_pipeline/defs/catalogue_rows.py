"""Catalogue rows named by their table: the table's declaration says which fields a row has.

A catalogue table (mailings, campaign steps, links, form results, ...) holds, column by
column, the fields of the client's record of the same name, plus a few the step works out
(the send day, counts, the message's columns). :func:`row_for` builds a row from the table's
columns, so a column is declared once, in the warehouse, and a column the record lacks and
the step does not give fails at once, naming both.
"""

from typing import Any

from spotler_pipeline.warehouse import Table
from spotler_pipeline.warehouse.campaign_tables import PRESENCE_COLUMNS

#: Filled by the write that merges a catalogue by presence, unless a row gives them.
_BY_THE_WRITE = frozenset(c.name for c in PRESENCE_COLUMNS)


def row_for(table: Table, record: Any, **given: Any) -> dict[str, Any]:
    """The row of ``table`` for ``record``: each column from ``given`` if named there, else
    the record's attribute of the column's name (``present``, ``first_seen_at`` and
    ``last_seen_at`` are left to the write unless given)."""
    row: dict[str, Any] = {}
    for name in table.column_names:
        if name in given:
            row[name] = given[name]
        elif name in _BY_THE_WRITE:
            continue
        elif hasattr(record, name):
            row[name] = getattr(record, name)
        else:
            raise AttributeError(
                f"{table.qualified_name}.{name}: no such field in {type(record).__name__} and "
                "not given by the step"
            )
    return row
