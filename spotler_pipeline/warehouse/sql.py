"""Quoting for the few SQL statements that cannot take parameters.

DuckDB binds ``?`` parameters in queries, but not in ``ATTACH``, ``LOAD``, ``COMMENT ON``,
``CREATE SECRET`` or as identifiers: there a path, comment or name has to be written into the
statement. These two functions are the one way the warehouse does that.
"""

from __future__ import annotations

__all__ = ["sql_identifier", "sql_string"]


def sql_string(text: str) -> str:
    """``text`` as a SQL string literal (``it's`` -> ``'it''s'``)."""
    return "'" + text.replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier (``a"b`` -> ``"a""b"``)."""
    return '"' + name.replace('"', '""') + '"'
