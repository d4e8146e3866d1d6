"""Values written into SQL as literals (``warehouse.sql``) and Python rows built into Arrow
through its JSON reader (``warehouse.arrow_values``) mean exactly what DuckDB's parameter
binding and ``pa.Table.from_pylist`` make of them; the runs use these to stay clear of pandas
(``test_run_costs.test_a_run_never_imports_pandas``)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spotler_pipeline.defs.checks import WarehouseCheck
from spotler_pipeline.warehouse.arrow_values import arrow_scalar, rows_to_arrow
from spotler_pipeline.warehouse.catalog import ALL_TABLES, TABLES
from spotler_pipeline.warehouse.quality import Finding, Window
from spotler_pipeline.warehouse.sql import bind, sql_literal

# Text DuckDB and Arrow both keep as it is: any Unicode but NUL (a SQL literal cannot hold
# one; binding it would not help either, DuckDB strings end there) and lone surrogates.
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
ZONES = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))])
DATETIMES = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31), timezones=ZONES
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    TEXT,
    st.dates(min_value=date(1971, 1, 1), max_value=date(2099, 12, 31)),
    DATETIMES,
    st.times(),
    st.timedeltas(min_value=timedelta(days=-10_000), max_value=timedelta(days=10_000)),
    st.decimals(min_value=-(10**12), max_value=10**12, places=3),
    st.uuids(),
    st.binary(max_size=16),
)


@pytest.fixture(scope="module")
def conn() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")
    return c


@settings(max_examples=300, deadline=None)
@given(value=SCALARS)
def test_a_literal_means_what_the_bound_parameter_meant(
    conn: duckdb.DuckDBPyConnection, value: Any
) -> None:
    literal = conn.execute(bind("SELECT ?", [value])).fetchone()[0]  # type: ignore[index]
    bound = conn.execute("SELECT ?", [value]).fetchone()[0]  # type: ignore[index]
    assert literal == bound
    assert type(literal) is type(bound)


@settings(max_examples=100, deadline=None)
@given(values=st.lists(TEXT, max_size=20))
def test_a_list_literal_filters_as_the_bound_list_did(
    conn: duckdb.DuckDBPyConnection, values: list[str]
) -> None:
    sql = (
        "SELECT count(*) FROM (SELECT unnest(?::VARCHAR[]) AS v) "
        "WHERE v IN (SELECT unnest(?::VARCHAR[]))"
    )
    assert (
        conn.execute(bind(sql, [values, values[::2]])).fetchone()
        == conn.execute(sql, [values, values[::2]]).fetchone()
    )


def test_special_floats_and_quotes_survive(conn: duckdb.DuckDBPyConnection) -> None:
    row = conn.execute(
        bind("SELECT ?, ?, ?, ?", [math.inf, -math.inf, 'it\'s "x" -- ?', 1.5])
    ).fetchone()
    assert row is not None
    assert row[0] == math.inf and row[1] == -math.inf and row[2] == 'it\'s "x" -- ?'
    assert row[3] == 1.5 and isinstance(row[3], float)  # DOUBLE, not DuckDB's DECIMAL
    nan = conn.execute(bind("SELECT ?", [math.nan])).fetchone()[0]  # type: ignore[index]
    assert math.isnan(nan)


def test_only_parameters_outside_quotes_and_comments_are_replaced() -> None:
    sql = """SELECT '?' AS "a?", ? -- a ? here
    , /* and ? here */ $day"""
    text = bind(sql.replace("$day", "?"), [1, date(2025, 4, 9)])
    assert text.startswith("""SELECT '?' AS "a?", 1 -- a ? here""")
    assert "/* and ? here */ DATE '2025-04-09'" in text
    named = bind("SELECT $a, '$a', $b", {"a": "x", "b": 2, "unused": 3})
    assert named == "SELECT 'x', '$a', 2"


def test_a_missing_or_extra_value_is_an_error_as_binding_would_be() -> None:
    with pytest.raises(ValueError, match="more '\\?' parameters"):
        bind("SELECT ?, ?", [1])
    with pytest.raises(ValueError, match="2 values for 1"):
        bind("SELECT ?", [1, 2])
    with pytest.raises(ValueError, match=r"\$day"):
        bind("SELECT $day", {"start": 1})
    with pytest.raises(ValueError, match="NUL"):
        sql_literal("a\x00b")
    with pytest.raises(TypeError, match="no SQL literal for a dict"):
        sql_literal({"a": 1})


def _column_values(kind: pa.DataType) -> st.SearchStrategy[Any]:
    if pa.types.is_string(kind):
        return st.none() | TEXT
    if pa.types.is_timestamp(kind):
        return st.none() | DATETIMES
    if pa.types.is_date(kind):
        return st.none() | st.dates(min_value=date(1971, 1, 1), max_value=date(2099, 12, 31))
    if pa.types.is_int64(kind):
        return st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    if pa.types.is_int32(kind):
        return st.none() | st.integers(min_value=-(2**31), max_value=2**31 - 1)
    if pa.types.is_boolean(kind):
        return st.none() | st.booleans()
    if pa.types.is_floating(kind):
        return st.none() | st.floats(allow_nan=False) | st.integers(-(2**40), 2**40)
    if pa.types.is_list(kind) and pa.types.is_string(kind.value_type):
        return st.none() | st.lists(st.none() | TEXT, max_size=4)
    raise AssertionError(f"no values for {kind}: add them here")


@settings(max_examples=60, deadline=None)
@given(data=st.data(), name=st.sampled_from(sorted(TABLES)))
def test_rows_become_the_table_from_pylist_would_build(data: st.DataObject, name: str) -> None:
    schema = TABLES[name].arrow_schema
    rows = data.draw(
        st.lists(
            st.fixed_dictionaries({}, optional={f.name: _column_values(f.type) for f in schema}),
            max_size=5,
        )
    )
    built = rows_to_arrow(rows, schema)
    assert built.schema == schema
    assert built.equals(pa.Table.from_pylist(rows, schema=schema))


def test_every_column_type_of_the_catalogue_has_values_in_the_test() -> None:
    for table in ALL_TABLES:
        for f in table.arrow_schema:
            _column_values(f.type)


def test_a_value_that_does_not_fit_its_column_is_refused() -> None:
    schema = pa.schema([pa.field("n", pa.int32()), pa.field("d", pa.date32())])
    with pytest.raises(pa.ArrowInvalid):
        rows_to_arrow([{"n": 2**40}], schema)
    with pytest.raises(pa.ArrowInvalid):
        rows_to_arrow([{"d": "not a day"}], schema)
    assert rows_to_arrow([{"other": 1}], schema).to_pylist() == [{"n": None, "d": None}]
    assert rows_to_arrow([], schema).num_rows == 0


def test_a_constant_is_the_scalar_pa_scalar_makes() -> None:
    moment = datetime(2025, 4, 9, 10, 30, tzinfo=timezone(timedelta(hours=2)))
    for value, kind in [
        ("abc", pa.string()),
        (date(2025, 4, 9), pa.date32()),
        (moment, pa.timestamp("us", tz="UTC")),
        (7, pa.int32()),
        (None, pa.int64()),
        (True, pa.bool_()),
    ]:
        assert arrow_scalar(value, kind).equals(pa.scalar(value, kind))


def test_a_check_out_of_memory_on_several_threads_is_tried_on_one() -> None:
    """The retry runs the same query again with ``threads = 1`` and restores the setting."""
    conn = duckdb.connect(config={"threads": 2})
    tried: list[int] = []

    def query(c: duckdb.DuckDBPyConnection, window: Window | None) -> Finding:
        threads = int(c.execute("SELECT current_setting('threads')").fetchone()[0])  # type: ignore[index]
        tried.append(threads)
        if threads > 1:
            raise duckdb.OutOfMemoryException("Out of Memory Error: failed to pin block")
        return Finding(checked=3, problems=0)

    check = WarehouseCheck(TABLES["mailings"], "fits_on_one_thread", "test", query, "rows")
    result = check.evaluate(conn, None)
    assert result.passed and tried == [2, 1]
    assert result.metadata["evaluated_on_one_thread"].value is True
    assert conn.execute("SELECT current_setting('threads')").fetchone() == (2,)
