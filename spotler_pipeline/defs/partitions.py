"""Daily partitions in the account's time zone, today's included (``end_offset=1``).

Dagster itself refuses a partition key outside the definition before any run starts when the
key is given as such: ``dagster asset materialize --partition 2019-01-01`` ends in
``DagsterInvalidSubsetError: All selected assets must have a PartitionsDefinition containing
the passed partition key `2019-01-01` ...`` (the CLI replaces the definition's own message,
so no hint of ours can be added there), and ``dg.materialize(partition_key=...)`` raises
``DagsterUnknownPartitionError: Could not find a partition with key `2019-01-01`.``. A run
launched with the partition as a *tag* (``dagster job execute --tags
'{"dagster/partition": "2019-01-01"}'``, a GraphQL ``launchRun``, the range tags of a
backfill run) is not checked: it reaches the asset body, which would load (or replace) a day
that is not a partition. :func:`check_partition_range` is the guard for that case, and says
which days exist and how to get earlier ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import dagster as dg

from spotler_pipeline.defs.config import PARTITIONS_START_ENV_VAR
from spotler_pipeline.defs.metadata import window_text
from spotler_pipeline.warehouse.quality import Window

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def daily_partitions(start: str, timezone: str) -> dg.DailyPartitionsDefinition:
    """Days ``YYYY-MM-DD`` in ``timezone``; the current day exists so this morning's
    sends and today's statistics snapshot can be loaded today and refreshed later."""
    return dg.DailyPartitionsDefinition(start_date=start, timezone=timezone, end_offset=1)


def partition_range_problem(
    partitions_def: dg.TimeWindowPartitionsDefinition, first_key: str, last_key: str
) -> str | None:
    """One line saying why ``first_key``..``last_key`` are not all partitions of
    ``partitions_def`` (days that exist, and ``SPOTLER_PARTITIONS_START``), or None."""
    first = partitions_def.get_first_partition_key()
    last = partitions_def.get_last_partition_key()
    if first is None or last is None:
        return (
            f"No partition exists yet: {PARTITIONS_START_ENV_VAR} is "
            f"{partitions_def.start.date().isoformat()}, after today "
            f"({partitions_def.timezone})"
        )
    shown = first_key if first_key == last_key else f"{first_key}...{last_key}"
    valid = (
        f"partitions are the days {first} to {last} (today in {partitions_def.timezone}), "
        f"the first set by {PARTITIONS_START_ENV_VAR}"
    )
    for key in (first_key, last_key):
        if partitions_def.has_partition_key(key):
            continue
        if not _DAY.fullmatch(key):
            return f"Partition {shown} is not a day YYYY-MM-DD: {valid}"
        if key < first:
            return (
                f"Partition {shown} is out of range: {valid}; to load earlier days set "
                f"{PARTITIONS_START_ENV_VAR} to {key} or before and reload the code location"
            )
        if key > last:
            return f"Partition {shown} is out of range: {valid}; later days do not exist yet"
        return f"Partition {shown} is not a day: {valid}"
    return None


def check_partition_range(context: dg.AssetExecutionContext) -> None:
    """Fail the step, in one line, when the run's partition (range) is not made of partitions
    of the asset: see the module docstring for when Dagster lets such a run start."""
    partitions_def = context.assets_def.partitions_def
    if not isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        return
    key_range = context.partition_key_range
    problem = partition_range_problem(partitions_def, key_range.start, key_range.end)
    if problem:
        raise dg.Failure(description=problem, allow_retries=False)


@dataclass(frozen=True)
class RunDays:
    """The days a partitioned run covers: Dagster's time window, each day's window, the
    same days as the warehouse sees them (what the write replaces and the inline checks look
    at), and as text for the log and metadata."""

    window: dg.TimeWindow
    each_day: list[dg.TimeWindow]
    days: Window
    text: str


def run_days(context: dg.AssetExecutionContext) -> RunDays:
    """The run's partition range, after :func:`check_partition_range`."""
    check_partition_range(context)
    window = context.partition_time_window
    partitions_def = context.assets_def.partitions_def
    assert isinstance(partitions_def, dg.TimeWindowPartitionsDefinition)
    return RunDays(
        window,
        [partitions_def.time_window_for_partition_key(k) for k in context.partition_keys],
        Window(window.start.date(), window.end.date()),
        window_text(context.partition_keys),
    )
