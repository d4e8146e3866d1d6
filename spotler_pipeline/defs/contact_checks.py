"""Checks of the contact histories: keys, and reconciliation of the card views with them."""

import dagster as dg

from spotler_pipeline.defs.checks import WarehouseCheck, primary_key_checks
from spotler_pipeline.warehouse.campaign_tables import CAMPAIGN_INTERACTION_TABLES
from spotler_pipeline.warehouse.contact_tables import (
    CONTACT_CAMPAIGN_MAILING_HISTORY,
    CONTACT_FORM_HISTORY,
    CONTACT_MAILING_HISTORY,
    CONTACT_TABLES,
)
from spotler_pipeline.warehouse.form_tables import FORM_RESULTS
from spotler_pipeline.warehouse.mailing_tables import MAILING_INTERACTION_TABLES, MAILINGS
from spotler_pipeline.warehouse.quality import (
    contact_campaign_card_vs_history,
    contact_forms_vs_results,
    contact_mailing_card_vs_history,
)

#: The history and the interaction tables are read at different moments (an open between
#: the two reads is a real, transient difference), so a disagreement warns, not errors.
RECONCILIATION_SEVERITY = dg.AssetCheckSeverity.WARN


def contact_checks() -> list[WarehouseCheck]:
    return [
        *primary_key_checks(CONTACT_TABLES),
        WarehouseCheck(
            CONTACT_MAILING_HISTORY,
            "card_matches_interactions",
            "For the contacts fetched, the view contact_mailing_card (built from the mailing "
            "interaction tables) lists the same mailings with the same opened / clicked / "
            "bounce as Spotler's own contact history; mailings of send days not loaded are "
            "not compared.",
            contact_mailing_card_vs_history,
            "disagreements between the card and the API history",
            additional_deps=(MAILINGS, *MAILING_INTERACTION_TABLES),
            severity=RECONCILIATION_SEVERITY,
        ),
        WarehouseCheck(
            CONTACT_CAMPAIGN_MAILING_HISTORY,
            "card_matches_interactions",
            "For the contacts fetched, the view contact_campaign_mailing_card (built from "
            "the campaign interaction tables) lists the same campaign messages per "
            "subscription with the same opened / clicked / bounce as Spotler's own history; "
            "sends on event days not loaded are not compared.",
            contact_campaign_card_vs_history,
            "disagreements between the card and the API history",
            additional_deps=tuple(CAMPAIGN_INTERACTION_TABLES),
            severity=RECONCILIATION_SEVERITY,
        ),
        WarehouseCheck(
            CONTACT_FORM_HISTORY,
            "submissions_match_form_results",
            "Every submission in the contacts' form histories is in spotler.form_results "
            "with the same time and completion (submit days not loaded are not compared).",
            contact_forms_vs_results,
            "submissions that disagree with form_results",
            additional_deps=(FORM_RESULTS,),
            severity=RECONCILIATION_SEVERITY,
        ),
    ]
