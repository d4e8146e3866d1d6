"""Checks specific to the mailing tables (the primary-key checks are generic)."""

from __future__ import annotations

import dagster as dg

from spotler_pipeline.defs.checks import WarehouseCheck, primary_key_checks
from spotler_pipeline.warehouse.mailing_tables import (
    MAILING_BOUNCES,
    MAILING_CLICKS,
    MAILING_LINKS,
    MAILING_OPENS,
    MAILING_RECIPIENTS,
    MAILING_STATS_SNAPSHOTS,
    MAILING_TABLES,
    MAILINGS,
)
from spotler_pipeline.warehouse.quality import (
    clicks_without_link,
    recipients_vs_sent_count,
    rows_without_parent,
    unique_contacts_vs_statistics,
)

#: Statistics and interactions are read at different moments; within this they agree.
RELATIVE_TOLERANCE = 0.02
ABSOLUTE_TOLERANCE = 5


def mailing_checks() -> list[WarehouseCheck]:
    tolerance = (
        f"within {RELATIVE_TOLERANCE:.0%} or {ABSOLUTE_TOLERANCE} contacts, whichever is "
        "larger (statistics and interactions are read at different moments)"
    )
    return [
        *primary_key_checks(MAILING_TABLES),
        WarehouseCheck(
            MAILING_CLICKS,
            "click_links_exist",
            "Every click's link_id is a link of its mailing in spotler.mailing_links.",
            lambda conn, window: clicks_without_link(conn, MAILING_CLICKS, MAILING_LINKS, window),
            "clicks on unknown links",
            additional_deps=(MAILING_LINKS,),
        ),
        *(
            WarehouseCheck(
                table,
                "mailings_in_catalogue",
                f"Every row of {table.qualified_name} belongs to a mailing in spotler.mailings "
                "(an orphan means another account's data, or mailings never loaded).",
                lambda conn, window, t=table: rows_without_parent(
                    conn, t, {"mailing_id": "encrypted_id"}, MAILINGS, window
                ),
                "rows of mailings missing from spotler.mailings",
                additional_deps=(MAILINGS,),
                # A snapshot covers the lookback's mailings (60 days by default), which can
                # reach further back than the catalogue was loaded (a 30-day backfill, the
                # partitions' start): a warning to load it, not wrong data to fail a run on.
                severity=(
                    dg.AssetCheckSeverity.WARN
                    if table is MAILING_STATS_SNAPSHOTS
                    else dg.AssetCheckSeverity.ERROR
                ),
            )
            for table in (
                MAILING_LINKS,
                MAILING_RECIPIENTS,
                MAILING_OPENS,
                MAILING_CLICKS,
                MAILING_BOUNCES,
                MAILING_STATS_SNAPSHOTS,
            )
        ),
        WarehouseCheck(
            MAILING_RECIPIENTS,
            "recipients_match_sent_count",
            "For every loaded send day, each mailing has exactly sent_count recipient rows "
            "(Spotler states sentCount; a listing that falls short of it is an error).",
            recipients_vs_sent_count,
            "mailings whose recipients differ from sent_count",
            additional_deps=(MAILINGS,),
        ),
        *(
            WarehouseCheck(
                table,
                f"unique_{people}_match_statistics",
                f"Distinct {people} per mailing"
                + (" (contacts with an open or a click row)" if also else "")
                + f" match the latest {statistic} {tolerance}.",
                lambda conn, window, t=table, s=statistic, a=also: unique_contacts_vs_statistics(
                    conn, t, s, RELATIVE_TOLERANCE, ABSOLUTE_TOLERANCE, window, also=a
                ),
                f"mailings whose {people} disagree with statistics",
                additional_deps=(MAILING_STATS_SNAPSHOTS, *also),
                severity=dg.AssetCheckSeverity.WARN,
            )
            for table, people, statistic, also in (
                # Spotler's open_count is total opens: image loads and clicks (a click is
                # also an open); mailing_opens lists the image loads.
                (MAILING_OPENS, "openers", "open_count", (MAILING_CLICKS,)),
                (MAILING_CLICKS, "clickers", "click_count", ()),
            )
        ),
    ]
