"""How values reach SQL: quoting, and literals in place of bound parameters.

The warehouse writes values into its statements as SQL literals instead of binding Python
objects as parameters. DuckDB's Python client imports pandas to bind any parameter that is
not ``None`` (it checks the value against pandas' missing-value markers), and pandas costs a
Dagster step process ~32 MB of memory and ~0.25 s that the pipeline has no other use for.
Every value a statement needs is one of ours (a day, a count, a name, an item id), so
:func:`bind` renders it with :func:`sql_literal`, the one place that quotes values, and a
statement sees exactly what a bound parameter would have given it.

Identifiers, paths and comments (``ATTACH``, ``COMMENT ON``, ``CREATE SECRET``) cannot be
parameters anyway: :func:`sql_string` and :func:`sql_identifier` write them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

__all__ = ["bind", "sql_identifier", "sql_literal", "sql_row", "sql_string"]


def sql_string(text: str) -> str:
    """``text`` as a SQL string literal (``it's`` -> ``'it''s'``)."""
    if "\x00" in text:
        raise ValueError("a SQL string literal cannot hold a NUL character")
    return "'" + text.replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier (``a"b`` -> ``"a""b"``)."""
    return '"' + name.replace('"', '""') + '"'


def sql_literal(value: Any) -> str:
    """``value`` as a DuckDB literal of the type a bound parameter would have had.

    ``None`` -> ``NULL``; ``bool``; ``int``; ``float`` (``DOUBLE``, not DuckDB's default
    ``DECIMAL`` for ``1.5``; NaN and infinities included); ``str``; ``datetime`` (with a
    time zone -> ``TIMESTAMPTZ``, without -> ``TIMESTAMP``); ``date``; ``time``;
    ``timedelta`` (``INTERVAL``); ``Decimal``; ``UUID``; ``bytes`` (``BLOB``); a list or
    tuple of these -> a list literal: the types a query of ours hands back, so a sample
    row can be written into the next query. Anything else raises ``TypeError``.
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value) if math.isfinite(value) else sql_string(str(value))
        return f"CAST({text} AS DOUBLE)"
    if isinstance(value, str):
        return sql_string(value)
    if isinstance(value, datetime):  # before date: a datetime is a date too
        kind = "TIMESTAMPTZ" if value.utcoffset() is not None else "TIMESTAMP"
        return f"{kind} {sql_string(value.isoformat(sep=' '))}"
    if isinstance(value, date):
        return f"DATE {sql_string(value.isoformat())}"
    if isinstance(value, time):
        kind = "TIMETZ" if value.utcoffset() is not None else "TIME"
        return f"{kind} {sql_string(value.isoformat())}"
    if isinstance(value, timedelta):
        micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
        return f"to_microseconds({micros})"
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else f"CAST({sql_string(str(value))} AS DOUBLE)"
    if isinstance(value, UUID):
        return f"CAST({sql_string(str(value))} AS UUID)"
    if isinstance(value, bytes | bytearray | memoryview):
        return f"unhex({sql_string(bytes(value).hex())})"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(sql_literal(v) for v in value) + "]"
    raise TypeError(f"no SQL literal for a {type(value).__name__}")


def sql_row(values: Sequence[Any]) -> str:
    """``values`` as one row of a ``VALUES`` list: ``(1, 'a', DATE '2025-04-09')``."""
    return "(" + ", ".join(sql_literal(v) for v in values) + ")"


# String literals, quoted identifiers and comments are copied as they are; only a ``?`` or
# a ``$name`` outside them is a parameter.
_TOKENS = re.compile(
    r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/|(?P<mark>\?|\$(?P<name>[A-Za-z_]\w*))""",
    re.DOTALL,
)


def bind(sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> str:
    """``sql`` with its parameters replaced by literals of ``params``: ``?`` in order from a
    sequence, ``$name`` from a mapping. A parameter without a value, or a value left over
    (positional), raises ``ValueError``, as DuckDB would on binding."""
    named = params if isinstance(params, Mapping) else None
    positional = [] if named is not None else list(params)
    used = 0

    def literal(match: re.Match[str]) -> str:
        nonlocal used
        if match.group("mark") is None:
            return match.group(0)
        name = match.group("name")
        if name is not None:
            if named is None or name not in named:
                raise ValueError(f"no value for parameter ${name}")
            return sql_literal(named[name])
        if named is not None:
            raise ValueError("a '?' parameter needs a sequence of values, not a mapping")
        if used >= len(positional):
            raise ValueError(f"more '?' parameters than the {len(positional)} values given")
        used += 1
        return sql_literal(positional[used - 1])

    text = _TOKENS.sub(literal, sql)
    if named is None and used != len(positional):
        raise ValueError(f"{len(positional)} values for {used} '?' parameters")
    return text
