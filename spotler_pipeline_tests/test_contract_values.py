"""Values mean what Spotler means: money in cents (and euros in the views), an upgrade that
keeps the stored cents, and "opened" counting every click as an open.

Each test has its own warehouse (a DuckDB file, or a DuckLake catalog on a throwaway
PostgreSQL for the lake upgrade); none needs Dagster or the simulator.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from spotler_pipeline.maturity import maturity
from spotler_pipeline.warehouse import Replacement, StagingArea, ddl, migrations, replace_window
from spotler_pipeline.warehouse.campaign_tables import (
    CAMPAIGN_MAILING_CLICKS,
    CAMPAIGN_MAILING_OPENS,
    CAMPAIGN_MAILING_RECIPIENTS,
)
from spotler_pipeline.warehouse.connection import open_warehouse
from spotler_pipeline.warehouse.contact_tables import CONTACT_MAILING_HISTORY
from spotler_pipeline.warehouse.lake import LakeSettings, open_lake
from spotler_pipeline.warehouse.mailing_tables import (
    MAILING_CLICKS,
    MAILING_OPENS,
    MAILING_RECIPIENTS,
    MAILING_STATS_SNAPSHOTS,
    MAILINGS,
)
from spotler_pipeline.warehouse.quality import (
    campaign_card_of,
    contact_mailing_card_vs_history,
    mailing_card_of,
    unique_contacts_vs_statistics,
)

FIXTURES = Path(__file__).parent / "fixtures"
DAY = date(2026, 6, 1)
AT = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    c = open_warehouse(tmp_path / "w.duckdb")
    yield c
    c.close()


def _write(conn: duckdb.DuckDBPyConnection, rows_by_table: dict) -> None:
    with StagingArea() as stage:
        replacements = []
        for table, rows in rows_by_table.items():
            full = [{c: row.get(c) for c in table.column_names} for row in rows]
            stage.append(table, pa.Table.from_pylist(full, schema=table.arrow_schema))
            replacements.append(Replacement(table, stage.files(table)))
        replace_window(conn, replacements, DAY, DAY + timedelta(days=1))


def _snapshot(mailing_id: str, cents: int | None, **counts: int) -> dict:
    return {
        "snapshot_day": DAY,
        "snapshot_at": AT,
        "mailing_id": mailing_id,
        "send_day": DAY,
        "days_since_send": 0,
        "conversion_value_cents": cents,
        **counts,
    }


def _comments(conn: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """What each column of table or view ``table`` says it means (its column comments)."""
    return dict(
        conn.execute(
            "SELECT column_name, comment FROM duckdb_columns() WHERE schema_name = 'spotler' "
            "AND table_name = ?",
            [table],
        ).fetchall()
    )


# -- money -----------------------------------------------------------------------------------


def test_conversion_value_is_exact_cents_with_euros_beside_it_and_null_when_absent(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    big = 9_007_199_254_740_993  # not a float: a DOUBLE would store ...992
    _write(
        conn,
        {
            MAILING_STATS_SNAPSHOTS: [
                _snapshot("shop", 123_456),
                _snapshot("no-ecommerce", None),
                _snapshot("huge", big),
            ]
        },
    )
    types = dict(
        conn.execute(
            "SELECT table_name || '.' || column_name, data_type FROM duckdb_columns() "
            "WHERE schema_name = 'spotler' AND column_name LIKE 'conversion_value%'"
        ).fetchall()
    )
    assert types == {
        "mailing_stats_snapshots.conversion_value_cents": "BIGINT",
        "mailing_stats_latest.conversion_value_cents": "BIGINT",
        "mailing_stats_latest.conversion_value_eur": "DECIMAL(20,2)",
    }
    rows = conn.execute(
        "SELECT mailing_id, conversion_value_cents, conversion_value_eur "
        "FROM spotler.mailing_stats_latest ORDER BY mailing_id"
    ).fetchall()
    assert rows == [
        ("huge", big, Decimal("90071992547409.93")),
        ("no-ecommerce", None, None),
        ("shop", 123_456, Decimal("1234.56")),
    ]
    comments = _comments(conn, "mailing_stats_latest")
    assert "euro cents" in comments["conversion_value_cents"]
    assert "NULL when the account has no eCommerce" in comments["conversion_value_cents"]
    assert "euros" in comments["conversion_value_eur"]


# -- upgrading a 0.2 warehouse ---------------------------------------------------------------


def _release_0_2_warehouse(conn: duckdb.DuckDBPyConnection) -> None:
    """The schema exactly as release 0.2.0 created it (conversion_value a DOUBLE holding
    Spotler's cents), at schema version 2, with three snapshots."""
    conn.execute((FIXTURES / "schema_v0_2_0.sql").read_text())
    conn.execute(
        "INSERT INTO spotler.mailing_stats_snapshots (snapshot_day, snapshot_at, mailing_id, "
        "open_count, conversion_value) VALUES "
        "('2026-06-01', '2026-06-01 08:00:00+00', 'M1', 10, 123456), "
        "('2026-06-02', '2026-06-02 08:00:00+00', 'M1', 12, 123499), "
        "('2026-06-02', '2026-06-02 08:00:00+00', 'M2', 3, NULL)"
    )


UPGRADED = [
    ("M1", date(2026, 6, 1), 123_456),
    ("M1", date(2026, 6, 2), 123_499),
    ("M2", date(2026, 6, 2), None),
]


def _assert_upgraded(conn: duckdb.DuckDBPyConnection) -> None:
    assert ddl.schema_version(conn) == migrations.CURRENT_VERSION == 3
    assert conn.execute(
        "SELECT version FROM spotler_meta.schema_version ORDER BY version"
    ).fetchall() == [(2,), (3,)]
    assert (
        conn.execute(
            "SELECT mailing_id, snapshot_day, conversion_value_cents "
            "FROM spotler.mailing_stats_snapshots ORDER BY ALL"
        ).fetchall()
        == UPGRADED
    )
    columns = {
        r[0]: r[1] for r in conn.execute("DESCRIBE spotler.mailing_stats_snapshots").fetchall()
    }
    assert columns["conversion_value_cents"] == "BIGINT" and "conversion_value" not in columns
    assert conn.execute(
        "SELECT mailing_id, conversion_value_eur FROM spotler.mailing_stats_latest ORDER BY 1"
    ).fetchall() == [("M1", Decimal("1234.99")), ("M2", None)]


def test_a_release_0_2_warehouse_keeps_its_cents_under_the_new_column(tmp_path: Path) -> None:
    conn = open_warehouse(tmp_path / "v02.duckdb")
    _release_0_2_warehouse(conn)
    assert ddl.schema_version(conn) == 2
    ddl.ensure_schema(conn)
    _assert_upgraded(conn)
    # the column keeps its place among the statistics, as a new warehouse has it
    names = [r[0] for r in conn.execute("DESCRIBE spotler.mailing_stats_snapshots").fetchall()]
    assert names == MAILING_STATS_SNAPSHOTS.column_names
    conn.close()
    with open_warehouse(tmp_path / "v02.duckdb") as again:  # the upgrade was committed
        _assert_upgraded(again)


def test_a_release_0_2_lake_keeps_its_cents_under_the_new_column(
    lake_settings: LakeSettings,
) -> None:
    conn = open_lake(lake_settings)
    try:
        _release_0_2_warehouse(conn)
        ddl.ensure_schema(conn)
        _assert_upgraded(conn)
    finally:
        conn.close()
    reader = open_lake(lake_settings, read_only=True)
    try:
        _assert_upgraded(reader)
    finally:
        reader.close()


# -- opened: every click is also an open -----------------------------------------------------


def _interactions(conn: duckdb.DuckDBPyConnection) -> None:
    """Mailing M to three contacts: 'rendered' loaded the images, 'clicker' only clicked (images
    off), 'silent' did neither. The same for campaign step S."""
    contacts = ("rendered", "clicker", "silent")

    def mailing_row(contact: str, **extra: object) -> dict:
        return {
            "send_day": DAY,
            "mailing_id": "M",
            "contact_external_id": f"{contact}@example.com",
            "contact_encrypted_id": f"enc-{contact}",
            **extra,
        }

    def campaign_row(contact: str, **extra: object) -> dict:
        return {
            "event_day": DAY,
            "campaign_id": "C",
            "campaign_mailing_id": "S",
            "campaign_subscription_id": f"sub-{contact}",
            "contact_external_id": f"{contact}@example.com",
            "contact_encrypted_id": f"enc-{contact}",
            **extra,
        }

    _write(
        conn,
        {
            MAILINGS: [{"send_day": DAY, "encrypted_id": "M", "type": "EMAIL", "present": True}],
            MAILING_RECIPIENTS: [mailing_row(c) for c in contacts],
            MAILING_OPENS: [mailing_row("rendered", open_date=AT)],
            MAILING_CLICKS: [
                mailing_row("rendered", click_date=AT + timedelta(minutes=5), link_id="1"),
                mailing_row("clicker", click_date=AT + timedelta(minutes=9), link_id="1"),
            ],
            MAILING_STATS_SNAPSHOTS: [_snapshot("M", None, open_count=2, open_rendered_count=1)],
            CAMPAIGN_MAILING_RECIPIENTS: [campaign_row(c, send_date=AT) for c in contacts],
            CAMPAIGN_MAILING_OPENS: [campaign_row("rendered", open_date=AT)],
            CAMPAIGN_MAILING_CLICKS: [
                campaign_row("clicker", click_date=AT + timedelta(minutes=9), link_id="1")
            ],
        },
    )


def test_a_contact_who_only_clicked_counts_as_opened_in_the_card_views(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    _interactions(conn)
    card = conn.execute(
        "SELECT contact_external_id, opened, opened_rendered, clicked, rendered_opens, "
        "first_open_date, first_rendered_open_date FROM spotler.contact_mailing_card ORDER BY 1"
    ).fetchall()
    assert card == [
        ("clicker@example.com", True, False, True, 0, AT + timedelta(minutes=9), None),
        ("rendered@example.com", True, True, True, 1, AT, AT),
        ("silent@example.com", False, False, False, 0, None, None),
    ]
    campaign = conn.execute(
        "SELECT contact_external_id, opened, opened_rendered, clicked "
        "FROM spotler.contact_campaign_mailing_card ORDER BY 1"
    ).fetchall()
    assert campaign == [
        ("clicker@example.com", True, False, True),
        ("rendered@example.com", True, True, False),
        ("silent@example.com", False, False, False),
    ]
    daily = conn.execute(
        "SELECT rendered_opens, unique_openers, unique_rendered_openers, unique_clickers "
        "FROM spotler.campaign_mailing_daily"
    ).fetchall()
    assert daily == [(1, 2, 1, 1)]
    # the checks' narrowed copies of the card views say the same
    everyone = "SELECT DISTINCT contact_external_id FROM spotler.mailing_recipients"
    assert conn.execute(
        f"SELECT contact_external_id, opened FROM ({mailing_card_of(everyone)}) ORDER BY 1"
    ).fetchall() == [(c, o) for c, o, *_ in card]
    assert conn.execute(
        f"SELECT contact_external_id, opened FROM ({campaign_card_of(everyone)}) ORDER BY 1"
    ).fetchall() == [(c, o) for c, o, *_ in campaign]
    described = _comments(conn, "contact_mailing_card")
    assert "every click also counts as an open" in described["opened"]
    assert "images were loaded" in described["opened_rendered"]


def test_openers_are_compared_with_total_opens_counting_clickers(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    _interactions(conn)
    # the image loads alone (1 contact) fall short of Spotler's total opens (2)
    alone = unique_contacts_vs_statistics(conn, MAILING_OPENS, "open_count", 0, 0)
    assert alone.problems == 1
    both = unique_contacts_vs_statistics(
        conn, MAILING_OPENS, "open_count", 0, 0, also=(MAILING_CLICKS,)
    )
    assert both.passed and both.checked == 1
    rendered = unique_contacts_vs_statistics(conn, MAILING_OPENS, "open_rendered_count", 0, 0)
    assert rendered.passed


@pytest.mark.parametrize("history_opened", [True, False], ids=["flag-total", "flag-rendered"])
def test_the_card_reconciles_with_a_history_that_clicked_whatever_its_open_flag_counts(
    conn: duckdb.DuckDBPyConnection, history_opened: bool
) -> None:
    """Spotler's history does not say whether its ``opened`` counts clicks: a contact who only
    clicked agrees with the card either way; one whose click the card lacks does not."""
    _interactions(conn)

    def history(contact: str, opened: bool, clicked: bool) -> dict:
        return {
            "activity_day": DAY,
            "contact_external_id": f"{contact}@example.com",
            "mailing_id": "M",
            "sent_date": AT,
            "sent_day": DAY,
            "opened": opened,
            "clicked": clicked,
            "fetched_at": AT,
        }

    rows = [
        history("rendered", True, True),
        history("clicker", history_opened, True),
        history("silent", False, False),
    ]
    _write(conn, {CONTACT_MAILING_HISTORY: rows})
    assert contact_mailing_card_vs_history(conn).passed
    conn.execute("DELETE FROM spotler.mailing_clicks WHERE contact_encrypted_id = 'enc-clicker'")
    found = contact_mailing_card_vs_history(conn)
    assert found.problems == 1
    assert found.sample[0]["card_opened"] is False and found.sample[0]["api_clicked"] is True


def test_the_maturity_curve_counts_clickers_as_openers_and_names_rendered_opens() -> None:
    rows = [
        {
            "mailing_id": f"m{n}",
            "name": f"m{n}",
            "send_day": DAY,
            "snapshot_day": DAY + timedelta(days=age),
            "days_since_send": age,
            "accepted_count": 100,
            # 20 contacts opened by day 1: 15 loaded the images, 5 only clicked
            "open_count": 20 if age else 0,
            "open_rendered_count": 15 if age else 0,
            "click_count": 8 if age else 0,
        }
        for n in range(3)
        for age in range(15)
    ]
    m = maturity(pd.DataFrame(rows))
    day1 = m.curve[m.curve.days_since_send == 1].iloc[0]
    assert day1.open_rate == 0.20 and day1.rendered_open_rate == 0.15
    assert m.share_on(1) == 1.0
