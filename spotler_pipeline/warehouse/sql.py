"""Quoting for the few statements whose text cannot take bound parameters.

Values reach SQL as bound parameters (``conn.execute(sql, params)``), bulk rows as
registered Arrow tables or ``read_parquet`` of staged files. DuckDB's grammar has no
parameter in ``ATTACH`` (the path), ``LOAD``, ``COMMENT ON ... IS``, ``CREATE SECRET`` or an
attach option such as ``DATA_PATH``; there, and for identifiers, these two helpers quote.
"""

from __future__ import annotations

__all__ = ["sql_identifier", "sql_string"]


def sql_string(text: str) -> str:
    """``text`` as a SQL string literal (``it's`` -> ``'it''s'``), for the statements above."""
    if "\x00" in text:
        raise ValueError("a SQL string literal cannot hold a NUL character")
    return "'" + text.replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier (``a"b`` -> ``"a""b"``)."""
    return '"' + name.replace('"', '""') + '"'
