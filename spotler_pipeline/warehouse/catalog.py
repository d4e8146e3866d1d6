"""Every table of the warehouse, by name."""

from __future__ import annotations

from spotler_pipeline.warehouse.campaign_tables import CAMPAIGN_TABLES
from spotler_pipeline.warehouse.contact_tables import CONTACT_TABLES
from spotler_pipeline.warehouse.form_tables import FORM_TABLES
from spotler_pipeline.warehouse.mailing_tables import MAILING_TABLES
from spotler_pipeline.warehouse.model import Table

ALL_TABLES: tuple[Table, ...] = (*MAILING_TABLES, *CAMPAIGN_TABLES, *FORM_TABLES, *CONTACT_TABLES)
TABLES: dict[str, Table] = {t.name: t for t in ALL_TABLES}
