"""Daily partitions in the account's time zone, today's included (``end_offset=1``)."""

from __future__ import annotations

import dagster as dg


def daily_partitions(start: str, timezone: str) -> dg.DailyPartitionsDefinition:
    """Days ``YYYY-MM-DD`` in ``timezone``; the current day exists so this morning's
    sends and today's statistics snapshot can be loaded today and refreshed later."""
    return dg.DailyPartitionsDefinition(start_date=start, timezone=timezone, end_offset=1)
