"""How a warehouse table is described: columns, keys and the column that partitions it.

One :class:`Table` per DuckDB table. The same description drives the DDL, the Arrow schema
of the staged pages, the Dagster column-schema metadata and the primary-key checks, so a
column is declared exactly once.

Columns that hold a value Spotler sends are not declared in the tables:

- a catalogue or contact-history table (mailings, links, statistics, forms, form results and
  answers, campaigns, triggers, steps, histories) takes its record's columns, name, SQL type
  and description, from the record's fields in :mod:`spotler_pipeline.records`
  (:func:`record_columns`), the records the client decodes Spotler's JSON into;
- an interaction table takes its API columns, name and type, from
  :mod:`spotler_pipeline.row_layouts` (:func:`api_column`, :func:`interaction_table`), the
  layouts the client decodes bulk pages into, and describes them itself.

A table adds only what the warehouse knows: keys, partition and parent-id columns, what a
step works out (counts, days, ``present``). Both modules are plain data: the warehouse still
knows nothing of HTTP, nor the client of the warehouse (their docstrings say why the names
live there and not in the tables).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa

from spotler_pipeline.records import record_columns_of
from spotler_pipeline.row_layouts import TIMESTAMP_TYPE, BatchColumn, BatchLayout

SCHEMA = "spotler"

_ARROW_TYPES: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "DATE": pa.date32(),
    "TIMESTAMPTZ": TIMESTAMP_TYPE,
    "JSON": pa.string(),
    "VARCHAR[]": pa.list_(pa.string()),
}


@dataclass(frozen=True)
class Column:
    """One column: its DuckDB type and what it means to a reader of the table."""

    name: str
    type: str
    description: str
    #: How a DuckDB file stores the column (``CREATE TABLE … USING COMPRESSION``); ``None``:
    #: DuckDB chooses per block. Only a hint for speed: a DuckLake catalog ignores it.
    compression: str | None = None

    @property
    def arrow_type(self) -> pa.DataType:
        return _ARROW_TYPES[self.type]


@dataclass(frozen=True)
class Table:
    """A table in schema ``spotler``.

    ``partition_column`` is the DATE column whose value is the Dagster partition key of the
    row; re-running a partition deletes and re-inserts exactly the rows whose value falls in
    the partition window. ``None`` means the table is replaced as a whole.
    """

    name: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    partition_column: str | None = None

    def __post_init__(self) -> None:
        names = self.column_names
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: a column is declared twice in {names}")
        for key in self.primary_key + ((self.partition_column,) if self.partition_column else ()):
            self.column(key)  # a KeyError naming the table and the column

    def describe(self, column: Column) -> str:
        """What ``column`` means in this table: its description, and for the partition
        column that it is the partition key (a column shared by tables is the key of some
        and not of others, e.g. ``send_day``)."""
        if column.name == self.partition_column:
            return f"{column.description} The partition key."
        return column.description

    @property
    def qualified_name(self) -> str:
        return f"{SCHEMA}.{self.name}"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.arrow_type) for c in self.columns])

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.qualified_name} has no column {name!r}")

    def create_sql(self, compression: bool = True) -> str:
        """``CREATE TABLE IF NOT EXISTS``; with ``compression``, each column's
        :attr:`Column.compression` (a DuckDB file takes it; a DuckLake table does not)."""
        cols = ",\n  ".join(
            f'"{c.name}" {c.type}'
            + (f" USING COMPRESSION {c.compression}" if compression and c.compression else "")
            for c in self.columns
        )
        return f"CREATE TABLE IF NOT EXISTS {self.qualified_name} (\n  {cols}\n)"


PRESENT = Column(
    "present",
    "BOOLEAN",
    "True while Spotler still lists this item; false once it disappeared from the API or "
    "answered 404 (the row and everything stored about the item are kept as last seen).",
)


#: Columns of opaque random tokens, one per row (Spotler's encryptedId of a contact), stored
#: uncompressed: DuckDB's string compression finds nothing to share in them, yet analyses
#: every block to find out, so a big day's insert is markedly faster for a slightly larger
#: file (figures in docs/benchmark-log.md).
UNCOMPRESSED_COLUMNS = frozenset({"contact_encrypted_id"})


def api_column(column: BatchColumn, description: str) -> Column:
    """The table column of a column of the API's rows: its name and type (``TIMESTAMPTZ`` or
    ``VARCHAR``) as the row layout declares them, and what it means to a reader."""
    return _column(column.name, "TIMESTAMPTZ" if column.timestamp else "VARCHAR", description)


def record_columns(
    record: type,
    *,
    after: Mapping[str, tuple[Column, ...]] | None = None,
    described: Mapping[str, str] | None = None,
) -> tuple[Column, ...]:
    """The table columns of a record of :mod:`spotler_pipeline.records`: each column of its
    row as the record declares it (name, SQL type, description), in the record's order, with
    the warehouse's own columns ``after`` the record column they follow (by name) and a
    description of its own for a column this table ``described`` otherwise."""
    after = after or {}
    described = described or {}
    columns: list[Column] = []
    names = set()
    for c in record_columns_of(record):
        description = described.get(c.name, c.description)
        columns.append(_column(c.name, c.sql_type, description))
        columns.extend(after.get(c.name, ()))
        names.add(c.name)
    if unknown := (set(after) | set(described)) - names:
        raise KeyError(f"{record.__name__} has no column {', '.join(sorted(unknown))}")
    return tuple(columns)


def record_column(record: type, name: str) -> Column:
    """The table column ``name`` of ``record``'s row (e.g. an id a child table repeats)."""
    for column in record_columns(record):
        if column.name == name:
            return column
    raise KeyError(f"{record.__name__} has no column {name!r}")


def _column(name: str, sql_type: str, description: str) -> Column:
    return Column(
        name,
        sql_type,
        description,
        compression="uncompressed" if name in UNCOMPRESSED_COLUMNS else None,
    )


def interaction_table(
    name: str,
    description: str,
    leading: tuple[Column, ...],
    layout: BatchLayout,
    descriptions: Mapping[str, str],
    primary_key: tuple[str, ...],
) -> Table:
    """A table of one bulk endpoint's rows: ``leading`` (the partition column first, then
    the ids of the item the rows belong to), then the layout's columns not among them, as
    the client's batches bring them, described by ``descriptions`` (by name; a ``KeyError``
    for one left undescribed). Partitioned by ``leading[0]``."""
    taken = {c.name for c in leading}
    rest = tuple(api_column(c, descriptions[c.name]) for c in layout.columns if c.name not in taken)
    return Table(
        name=name,
        description=description,
        columns=(*leading, *rest),
        primary_key=primary_key,
        partition_column=leading[0].name,
    )
