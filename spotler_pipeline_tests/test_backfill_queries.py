"""The GraphQL that ``spotler-pipeline backfill`` (and the end-to-end tests, which import it)
sends is valid against the installed Dagster's schema: a renamed field fails here, not in
a user's terminal or only in the slow end-to-end run."""

from __future__ import annotations

import pytest
from dagster_graphql.schema import create_schema
from graphql import parse, validate

from spotler_pipeline import backfill

QUERIES = {
    name: getattr(backfill, name)
    for name in ("ASSET_NODES", "LAUNCH", "STATUS", "RUNS", "FAILURES")
}


@pytest.fixture(scope="module")
def schema():
    return create_schema().graphql_schema


@pytest.mark.parametrize("query", QUERIES.values(), ids=QUERIES.keys())
def test_the_query_is_valid_against_dagsters_schema(schema, query: str) -> None:
    assert validate(schema, parse(query)) == []
