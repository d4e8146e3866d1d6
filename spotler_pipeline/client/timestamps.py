"""Dates going to Spotler and timestamps coming back.

Spotler takes dates in the account's wall-clock zone, in one of two documented formats:
``yyyy-mm-ddThh:mm:ss`` (``ISODateParam``: ``fromDate``/``toDate``) and ``yyyyMMddHHmmss``
(``DateParam``: the form-result range ``startDate``/``endDate``). It answers ISO 8601
strings that may or may not carry an offset. Naive values are read in the account's zone;
an ambiguous wall time (the repeated hour in autumn) is read as its first occurrence and a
wall time inside the spring-forward gap is shifted forward, as Python's ``fold=0`` does.
Records get aware ``datetime`` values in UTC; Arrow batches get ``timestamp[us, UTC]``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo

import pyarrow as pa
import pyarrow.compute as pc

from spotler_pipeline.row_layouts import TIMESTAMP_TYPE

__all__ = [
    "PAGE_MEMORY",
    "API_DATETIME_FORMAT",
    "DATE_PARAM_FORMAT",
    "TIMESTAMP_TYPE",
    "format_api_datetime",
    "format_date_param",
    "parse_api_datetime",
    "parse_timestamp_array",
]

API_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
DATE_PARAM_FORMAT = "%Y%m%d%H%M%S"
_NAIVE_TYPE = pa.timestamp("us")

#: Where Arrow allocates the arrays of decoded pages: the C library's allocator, named on each
#: call. Pages are decoded in every fetch thread at once, and Arrow's default allocator
#: (mimalloc) keeps a heap per thread that holds on to what a page freed, so a large send
#: day's run held far more memory than its pages needed (docs/benchmark-log.md). Named per
#: call, the pool changes nothing for the rest of the process.
PAGE_MEMORY = pa.system_memory_pool()


# A zone designator at the end; searched from position 10, past the date's own hyphens.
_OFFSET = re.compile(r"(?:[zZ]|[+-]\d\d(?::?\d\d)?)\s*$")


def _cast_naive(values: pa.Array, zone_name: str) -> pa.Array:
    naive = values.cast(_NAIVE_TYPE, memory_pool=PAGE_MEMORY)
    local = pc.assume_timezone(
        naive, zone_name, ambiguous="earliest", nonexistent="raise", memory_pool=PAGE_MEMORY
    )
    return local.cast(TIMESTAMP_TYPE, memory_pool=PAGE_MEMORY)


def _cast_offset(values: pa.Array, zone_name: str) -> pa.Array:
    return values.cast(TIMESTAMP_TYPE, memory_pool=PAGE_MEMORY)


def format_api_datetime(value: datetime, zone: tzinfo) -> str:
    """``value`` as Spotler's date parameter: aware values are converted to ``zone``,
    naive ones are taken to be in ``zone`` already."""
    if value.tzinfo is not None:
        value = value.astimezone(zone)
    return value.strftime(API_DATETIME_FORMAT)


def format_date_param(value: datetime, zone: tzinfo) -> str:
    """``value`` as Spotler's ``DateParam`` (``yyyyMMddHHmmss``), the format of the
    form-result range; zones as in :func:`format_api_datetime`."""
    if value.tzinfo is not None:
        value = value.astimezone(zone)
    return value.strftime(DATE_PARAM_FORMAT)


def parse_api_datetime(value: str | None, zone: tzinfo) -> datetime | None:
    """An aware UTC ``datetime`` from Spotler's ISO 8601 text (``None`` stays ``None``)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO 8601 string, got {type(value).__name__}")
    text = value.strip()
    if not text:
        return None
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def parse_timestamp_array(values: pa.Array, zone_name: str, zone: tzinfo) -> pa.Array:
    """A ``timestamp[us, UTC]`` array from an array of Spotler's timestamp strings.

    Tries Arrow's vectorised parsers first (naive, then offset-carrying) and falls back to
    :func:`parse_api_datetime` per element for mixed or unusual input.
    """
    if pa.types.is_timestamp(values.type):
        return values.cast(TIMESTAMP_TYPE, memory_pool=PAGE_MEMORY)
    if values.null_count == len(values):
        return pa.nulls(len(values), TIMESTAMP_TYPE, memory_pool=PAGE_MEMORY)
    # A failed cast costs far more than a successful one, so try first the form the first
    # value has; a page mixing both forms ends in the per-element fallback.
    first = next(v for v in values if v.is_valid).as_py()
    casts = [_cast_naive, _cast_offset]
    if _OFFSET.search(first, 10):
        casts.reverse()
    for cast in casts:
        try:
            return cast(values, zone_name)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    return pa.array(
        [parse_api_datetime(v, zone) for v in values.to_pylist()],
        type=TIMESTAMP_TYPE,
        memory_pool=PAGE_MEMORY,
    )
