"""Export a DuckDB file with the DuckDB that can read it (run by :mod:`.legacy` as a script).

Usage: ``python -I -S _legacy_export.py <side folder> <database file> <export folder>``.

Runs in a separate interpreter whose only DuckDB is the one installed in ``<side folder>``
(``-S`` keeps the project's own site-packages, and so its DuckDB, off ``sys.path``). Writes
every table of the file as ``<export folder>/<n>.parquet`` and ``manifest.json``: schemas,
each table's DDL, comments and row count, each view's DDL and comment, and any object kind
this exporter does not carry over (so the caller can refuse rather than lose it). Imports
nothing from the project: the project's DuckDB would be the wrong one.
"""

from __future__ import annotations

import json
import os
import sys


def _main(side: str, database: str, out: str) -> None:
    sys.path.insert(0, side)
    import duckdb

    os.makedirs(out, exist_ok=True)
    # A WAL left beside the file (the old release stopped without a checkpoint) is folded in
    # by the DuckDB that wrote it: the converted file must not find someone else's WAL.
    has_wal = os.path.exists(database + ".wal")
    conn = duckdb.connect(config={"memory_limit": "256MB", "temp_directory": out + "/.spill"})
    mode = "" if has_wal else " (READ_ONLY)"
    conn.execute(f"ATTACH '{database.replace(chr(39), chr(39) * 2)}' AS old{mode}")
    if has_wal:
        conn.execute("CHECKPOINT old")

    def rows(sql: str, params: list[object] | None = None) -> list[tuple]:
        return conn.execute(sql, params or []).fetchall()

    schemas = [
        r[0]
        for r in rows(
            "SELECT schema_name FROM duckdb_schemas() WHERE database_name = 'old' "
            "AND NOT internal ORDER BY schema_name"
        )
    ]
    tables = []
    for n, (schema, name, sql, comment) in enumerate(
        rows(
            "SELECT schema_name, table_name, sql, comment FROM duckdb_tables() "
            "WHERE database_name = 'old' AND NOT internal ORDER BY schema_name, table_name"
        )
    ):
        qualified = f'old."{schema}"."{name}"'
        path = os.path.join(out, f"{n}.parquet")
        conn.execute(
            f"COPY (SELECT * FROM {qualified}) TO '{path.replace(chr(39), chr(39) * 2)}' "
            "(FORMAT parquet)"
        )
        count = rows(f"SELECT count(*) FROM {qualified}")[0][0]
        columns = [
            {"name": c, "comment": cc}
            for c, cc in rows(
                "SELECT column_name, comment FROM duckdb_columns() WHERE database_name = 'old' "
                "AND schema_name = ? AND table_name = ? ORDER BY column_index",
                [schema, name],
            )
        ]
        tables.append(
            {
                "schema": schema,
                "name": name,
                "sql": sql,
                "comment": comment,
                "columns": columns,
                "rows": int(count),
                "file": os.path.basename(path),
            }
        )
    views = [
        {"schema": s, "name": v, "sql": sql, "comment": comment}
        for s, v, sql, comment in rows(
            "SELECT schema_name, view_name, sql, comment FROM duckdb_views() "
            "WHERE database_name = 'old' AND NOT internal ORDER BY schema_name, view_name"
        )
    ]
    unsupported = [
        f"{kind} {s}.{n}"
        for kind, query in (
            ("sequence", "SELECT schema_name, sequence_name FROM duckdb_sequences()"),
            ("index", "SELECT schema_name, index_name FROM duckdb_indexes()"),
            ("type", "SELECT schema_name, type_name FROM duckdb_types() WHERE NOT internal"),
            (
                "macro",
                "SELECT schema_name, function_name FROM duckdb_functions() "
                "WHERE NOT internal AND function_type IN ('macro', 'table_macro')",
            ),
        )
        for s, n in rows(_with_database(query))
    ]
    manifest = {
        "duckdb_version": duckdb.__version__,
        "schemas": schemas,
        "tables": tables,
        "views": views,
        "unsupported": unsupported,
    }
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
    conn.close()


def _with_database(query: str) -> str:
    """Restrict one of DuckDB's catalog functions to the attached file."""
    joiner = " AND " if " WHERE " in query else " WHERE "
    return f"{query}{joiner}database_name = 'old'"


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(f"usage: {sys.argv[0]} <side folder> <database file> <export folder>")
    _main(*sys.argv[1:])
