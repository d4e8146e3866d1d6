"""How a warehouse table is described: columns, keys and the column that partitions it.

One :class:`Table` per DuckDB table. The same description drives the DDL, the Arrow schema
of the staged pages, the Dagster column-schema metadata and the primary-key checks, so a
column is declared exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

SCHEMA = "spotler"

_ARROW_TYPES: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "DATE": pa.date32(),
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
    "JSON": pa.string(),
    "VARCHAR[]": pa.list_(pa.string()),
}


@dataclass(frozen=True)
class Column:
    """One column: its DuckDB type and what it means to a reader of the table."""

    name: str
    type: str
    description: str

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

    def create_sql(self) -> str:
        cols = ",\n  ".join(f'"{c.name}" {c.type}' for c in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {self.qualified_name} (\n  {cols}\n)"


PRESENT = Column(
    "present",
    "BOOLEAN",
    "True while Spotler still lists this item; false once it disappeared from the API or "
    "answered 404 (the row and everything stored about the item are kept as last seen).",
)
