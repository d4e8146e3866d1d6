"""Views over the tables: the shapes analysts query most."""

from __future__ import annotations

from spotler_pipeline.warehouse.model import SCHEMA

MAILING_STATS_LATEST = f"""
CREATE OR REPLACE VIEW {SCHEMA}.mailing_stats_latest AS
SELECT *
FROM {SCHEMA}.mailing_stats_snapshots
QUALIFY row_number() OVER (PARTITION BY mailing_id ORDER BY snapshot_at DESC) = 1
"""

#: name -> CREATE VIEW statement, in creation order (later views may use earlier ones).
VIEWS: dict[str, str] = {
    "mailing_stats_latest": MAILING_STATS_LATEST,
}
