"""Python values into Arrow, without pandas.

``pa.array``, ``pa.scalar`` and ``Table.from_pylist`` import pandas the first time they see
a Python value (pyarrow checks for pandas' own array types), and pandas costs a Dagster step
process ~32 MB and ~0.25 s it has no other use for (see :mod:`spotler_pipeline.warehouse.sql`
for the same cost on DuckDB's side). The rows a run builds itself (catalogues, form answers,
contact details, the constant columns of a page) go through Arrow's JSON reader instead,
which needs no pandas and checks every value against the table's schema the same way.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.json as pj

__all__ = ["arrow_scalar", "empty_batch", "rows_to_arrow"]


def rows_to_arrow(rows: Iterable[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """``rows`` (dicts by column name) as a table of ``schema``, as ``Table.from_pylist``
    would build it: a missing key is null, a key not in ``schema`` is ignored, a value that
    does not fit its column raises ``pa.ArrowInvalid`` (a ``TypeError`` if it is no JSON
    value at all)."""
    body = b"\n".join(orjson.dumps(row) for row in rows)
    if not body:
        return pa.Table.from_batches([empty_batch(schema)])
    table = pj.read_json(
        io.BytesIO(body),
        read_options=pj.ReadOptions(block_size=len(body) + 1, use_threads=False),
        parse_options=pj.ParseOptions(
            explicit_schema=_json_schema(schema), unexpected_field_behavior="ignore"
        ),
    )
    return table.cast(schema)


def empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    """A batch of ``schema`` with no rows (``schema.empty_table()`` would import pandas)."""
    return pa.RecordBatch.from_arrays([pa.nulls(0, f.type) for f in schema], schema=schema)


@functools.lru_cache(maxsize=256)
def arrow_scalar(value: Any, kind: pa.DataType) -> pa.Scalar:
    """``value`` as an Arrow scalar of type ``kind`` (``pa.scalar(value, kind)``), remembered:
    a fetch adds the same few constants (item id, day) to every page."""
    return rows_to_arrow([{"v": value}], pa.schema([pa.field("v", kind)])).column(0)[0]


@functools.lru_cache(maxsize=64)
def _json_schema(schema: pa.Schema) -> pa.Schema:
    # Arrow's JSON reader parses timestamps from ISO strings but not dates: read those as
    # text, and the final cast makes them dates (and refuses text that is not one).
    return pa.schema([_readable(f) for f in schema])


def _readable(field: pa.Field) -> pa.Field:
    if pa.types.is_date(field.type):
        return field.with_type(pa.string())
    if pa.types.is_list(field.type) and pa.types.is_date(field.type.value_type):
        return field.with_type(pa.list_(pa.string()))
    return field
