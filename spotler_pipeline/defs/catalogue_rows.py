"""Catalogue rows named by their table: the table's declaration says which fields a row has.

A catalogue table (mailings, campaign steps, links, form results, ...) holds the columns of
a record of :mod:`spotler_pipeline.records`, where each field is declared once (its JSON key,
its column and what that means; ``warehouse/model.py`` makes the table's columns of them),
plus a few the step works out (the send day, counts, parent ids). :func:`row_for` builds a
row from the table's columns and the record's values (:func:`~spotler_pipeline.records.
row_values`), so no column is named again here; a column neither the record has nor the
step gives fails at once, naming both.
"""

from typing import Any

from spotler_pipeline.records import row_values
from spotler_pipeline.warehouse import Table
from spotler_pipeline.warehouse.campaign_tables import PRESENCE_COLUMNS

#: Filled by the write that merges a catalogue by presence, unless a row gives them.
_BY_THE_WRITE = frozenset(c.name for c in PRESENCE_COLUMNS)


def row_for(table: Table, record: Any, **given: Any) -> dict[str, Any]:
    """The row of ``table`` for ``record``: each column from ``given`` if named there, else
    the record's value of that column (``present``, ``first_seen_at`` and ``last_seen_at``
    are left to the write unless given)."""
    values = row_values(record)
    row: dict[str, Any] = {}
    for name in table.column_names:
        if name in given:
            row[name] = given[name]
        elif name in _BY_THE_WRITE:
            continue
        elif name in values:
            row[name] = values[name]
        else:
            raise AttributeError(
                f"{table.qualified_name}.{name}: no such field in {type(record).__name__} and "
                "not given by the step"
            )
    return row
