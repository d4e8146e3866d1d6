"""Checks of the campaign tables (the primary-key checks are generic)."""

from __future__ import annotations

from spotler_pipeline.defs.checks import WarehouseCheck, primary_key_checks
from spotler_pipeline.warehouse.campaign_tables import (
    CAMPAIGN_INTERACTION_TABLES,
    CAMPAIGN_MAILING_CLICKS,
    CAMPAIGN_MAILING_LINKS,
    CAMPAIGN_MAILINGS,
    CAMPAIGN_TABLES,
)
from spotler_pipeline.warehouse.quality import (
    campaign_clicks_without_link,
    interactions_of_unknown_steps,
)


def campaign_checks() -> list[WarehouseCheck]:
    return [
        *primary_key_checks(CAMPAIGN_TABLES),
        WarehouseCheck(
            CAMPAIGN_MAILING_CLICKS,
            "click_links_exist",
            "Every click's link_id is a link of its campaign message in "
            "spotler.campaign_mailing_links.",
            campaign_clicks_without_link,
            "clicks on unknown links",
            additional_deps=(CAMPAIGN_MAILING_LINKS,),
        ),
        *(
            WarehouseCheck(
                table,
                "steps_in_catalogue",
                f"Every row of {table.qualified_name} belongs to a campaign message step "
                "listed in spotler.campaign_mailings (load the campaign catalogue first).",
                lambda conn, window, t=table: interactions_of_unknown_steps(conn, t, window),
                "events of steps missing from campaign_mailings",
                additional_deps=(CAMPAIGN_MAILINGS,),
            )
            for table in CAMPAIGN_INTERACTION_TABLES
        ),
    ]
