"""Paged answers straight to Arrow, without a Python object per row.

Three decoders, fastest first; a page that one cannot read falls through to the next:

1. ``strict``: ``pyarrow.json`` with an explicit schema (every leaf a string), unknown fields
   ignored. All in C++ with the GIL released.
2. ``inferred``: ``pyarrow.json`` declaring only the timestamp leaves and inferring the rest,
   for ids that arrive as JSON integers or booleans (cast to text afterwards, which gives
   what :func:`~spotler_pipeline.client.values.text` gives; a column Arrow reads as floats
   or objects is left to the next decoder, as Arrow's cast writes ``1e+20`` where ``text``
   writes ``100000000000000000000``).
3. ``python``: orjson and per-row column building with the record path's conversions
   (:mod:`~spotler_pipeline.client.values`, :func:`~spotler_pipeline.client.timestamps.
   parse_api_datetime`); it also understands every tolerated shape (bare arrays, a renamed
   or missing array field). Only if this fails is the body unusable.

The decoder that worked is remembered for the next page of the same stream, so a stream of
numeric ids does not pay for a failed strict parse on every page.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from spotler_pipeline.client.paging import Page, decode_json, json_page
from spotler_pipeline.client.timestamps import PAGE_MEMORY, parse_timestamp_array
from spotler_pipeline.client.transport import BodyError
from spotler_pipeline.client.values import text
from spotler_pipeline.row_layouts import BatchColumn, BatchLayout

__all__ = ["ArrowPageDecoder"]

_PAGING_TYPE = pa.struct([pa.field("next", pa.string())])
_STRICT, _INFERRED, _PYTHON = "strict", "inferred", "python"


class _Unreadable(Exception):
    """This decoder cannot read the page; try the next one."""


class ArrowPageDecoder:
    """Decodes the pages of one stream into ``RecordBatch`` objects of ``layout.schema``.

    Not thread-safe: make one per stream.
    """

    def __init__(self, layout: BatchLayout, array_field: str, zone_name: str, zone: tzinfo):
        self._layout = layout
        self._array_field = array_field
        self._zone_name = zone_name
        self._zone = zone
        self._schema = layout.schema
        self._strict_schema = pa.schema(
            [
                pa.field(array_field, pa.list_(layout.row_type())),
                pa.field("paging", _PAGING_TYPE),
            ]
        )
        self._inferred_schema = pa.schema(
            [
                pa.field(array_field, pa.list_(_timestamps_only(layout))),
                pa.field("paging", _PAGING_TYPE),
            ]
        )
        self._decoders = {
            _STRICT: lambda body: self._arrow(body, self._strict_schema, "ignore"),
            _INFERRED: lambda body: self._arrow(body, self._inferred_schema, "infer"),
            _PYTHON: self._python,
        }
        self._order = [_STRICT, _INFERRED, _PYTHON]
        self.last_decoder: str | None = None

    def __call__(self, body: bytes) -> Page[pa.RecordBatch]:
        for i, name in enumerate(self._order):
            try:
                page = self._decoders[name](body)
            except _Unreadable:
                continue
            if i:
                # Start with the decoder that worked next time.
                self._order.insert(0, self._order.pop(i))
            self.last_decoder = name
            return page
        raise AssertionError("the python decoder never gives up silently")  # pragma: no cover

    def _arrow(self, body: bytes, schema: pa.Schema, unexpected: str) -> Page[pa.RecordBatch]:
        try:
            table = pj.read_json(
                pa.BufferReader(body),
                read_options=pj.ReadOptions(block_size=len(body) + 1, use_threads=False),
                parse_options=pj.ParseOptions(
                    explicit_schema=schema,
                    unexpected_field_behavior=unexpected,
                    newlines_in_values=True,
                ),
                memory_pool=PAGE_MEMORY,
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise _Unreadable from exc
        if table.num_rows != 1:
            raise _Unreadable  # several JSON values, or none
        # One JSON value read as one block: each column is one chunk of one row.
        lists = table.column(self._array_field).chunk(0)
        if lists.null_count:
            raise _Unreadable  # array field absent or null: let the tolerant decoder look
        rows = pc.list_flatten(lists, memory_pool=PAGE_MEMORY)
        paging = table.column("paging")[0].as_py()  # {"next": ...} or None
        next_url = paging["next"] if paging else None
        arrays = [self._arrow_column(rows, column) for column in self._layout.columns]
        batch = pa.RecordBatch.from_arrays(arrays, schema=self._schema)
        return Page(batch, batch.num_rows, has_next=bool(next_url))

    def _arrow_column(self, rows: pa.StructArray, column: BatchColumn) -> pa.Array:
        leaf = _leaf(rows, column.source)
        kind = leaf.type
        if pa.types.is_null(kind):
            return pa.nulls(len(leaf), column.arrow_type, memory_pool=PAGE_MEMORY)
        if column.timestamp:
            if not pa.types.is_string(kind):
                raise _Unreadable
            try:
                return parse_timestamp_array(leaf, self._zone_name, self._zone)
            except ValueError as exc:  # includes ArrowInvalid
                raise BodyError(f"unreadable {'.'.join(column.source)}: {exc}") from None
        if pa.types.is_string(kind):
            return leaf
        if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
            return leaf.cast(pa.string(), memory_pool=PAGE_MEMORY)  # "12", "true": as text()
        raise _Unreadable  # floats, objects, lists: values.text in the python decoder

    def _python(self, body: bytes) -> Page[pa.RecordBatch]:
        page = json_page(decode_json(body), self._array_field)
        rows = page.rows
        for row in rows:
            if not isinstance(row, dict):
                raise BodyError(f"a row of {self._array_field!r} is not a JSON object")
        arrays = [self._python_column(rows, column) for column in self._layout.columns]
        batch = pa.RecordBatch.from_arrays(arrays, schema=self._schema)
        return Page(batch, batch.num_rows, has_next=page.has_next, complete=page.complete)

    def _python_column(self, rows: Sequence[dict[str, Any]], column: BatchColumn) -> pa.Array:
        values = [_dig(row, column.source) for row in rows]
        try:
            if column.timestamp:
                if any(v is not None and not isinstance(v, str) for v in values):
                    raise ValueError("expected ISO 8601 strings")
                return parse_timestamp_array(
                    pa.array(values, pa.string(), memory_pool=PAGE_MEMORY),
                    self._zone_name,
                    self._zone,
                )
            return pa.array([text(v) for v in values], pa.string(), memory_pool=PAGE_MEMORY)
        except (ValueError, TypeError) as exc:
            raise BodyError(f"unreadable {'.'.join(column.source)}: {exc}") from None


def _timestamps_only(layout: BatchLayout) -> pa.StructType:
    """The row type declaring only the timestamp leaves (and the structs above them)."""
    return BatchLayout(tuple(c for c in layout.columns if c.timestamp)).row_type()


def _leaf(rows: pa.StructArray, path: tuple[str, ...]) -> pa.Array:
    """The values at ``path`` inside each row; null where any level is null or missing."""
    array: pa.Array = rows
    for key in path:
        kind = array.type
        if not pa.types.is_struct(kind):
            raise _Unreadable
        index = kind.get_field_index(key)
        if index < 0:
            return pa.nulls(len(rows), memory_pool=PAGE_MEMORY)
        array = pc.struct_field(array, [index], memory_pool=PAGE_MEMORY)
    return array


def _dig(row: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if row is None:
            return None
        if not isinstance(row, dict):
            raise BodyError(f"expected an object at {'.'.join(path)}")
        row = row.get(key)
    return row
