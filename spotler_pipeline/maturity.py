"""How a mailing's statistics mature, from its own daily snapshots (pandas; no Dagster).

Spotler reports statistics only as they are *now*; ``mailing_stats_snapshots`` keeps one row
per mailing per day. Following each mailing across *its own* snapshots, by days since *its*
send, shows how its opens and clicks arrive. Comparing different mailings at different ages
would not: a curve of "the opens of whichever mailings were 3 days old" mixes big and small
sends and says nothing about any of them.

Opens are Spotler's total opens (``openCount``): contacts who loaded the images *or* clicked
a link, since every click also counts as an open. ``openRenderedCount`` (image loads alone)
is kept beside it as ``rendered_open_rate``; it misses whoever reads with images off.

A mailing counts when its snapshots start no later than :data:`FIRST_DAY` days after its send
and reach at least :data:`MIN_DAYS` days after it; its latest snapshot stands in for its final
count (the long tail adds a little after that). With fewer than :data:`MIN_MAILINGS` such
mailings, :func:`maturity` says plainly that there are too few snapshots to tell.

>>> from spotler_pipeline.maturity import SNAPSHOT_QUERY, maturity
>>> m = maturity(con.sql(SNAPSHOT_QUERY).df())
>>> print(m.summary())
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

#: A followed mailing's first snapshot is at most this many days after its send.
FIRST_DAY = 1
#: ... and its snapshots reach at least this many days after it.
MIN_DAYS = 14
#: Fewer followed mailings than this: too few to tell.
MIN_MAILINGS = 3
#: "Most of the opens": this share of the latest open count.
SHARE = 0.9

#: Every e-mail mailing's snapshots, with what :func:`maturity` needs (run with ``con.sql``).
SNAPSHOT_QUERY = """
SELECT s.mailing_id, coalesce(m.name, s.mailing_id) AS name, s.send_day, s.snapshot_day,
       s.snapshot_at, s.days_since_send, s.accepted_count, s.open_count,
       s.open_rendered_count, s.click_count
FROM spotler.mailing_stats_snapshots s
LEFT JOIN spotler.mailings m ON m.encrypted_id = s.mailing_id
WHERE m.type IS DISTINCT FROM 'SMS' AND s.accepted_count > 0
ORDER BY s.mailing_id, s.days_since_send
"""
#: The columns of :data:`SNAPSHOT_QUERY` (an empty frame of them: no snapshots loaded).
SNAPSHOT_COLUMNS = (
    "mailing_id",
    "name",
    "send_day",
    "snapshot_day",
    "snapshot_at",
    "days_since_send",
    "accepted_count",
    "open_count",
    "open_rendered_count",
    "click_count",
)


@dataclass(frozen=True)
class Maturity:
    """Per-mailing curves and their median; see the module docstring."""

    #: One row per followed mailing and days since its send: ``open_rate`` (total opens,
    #: clicks included), ``rendered_open_rate`` (image loads), ``click_rate`` (each of
    #: accepted), ``share_of_final_opens`` / ``_clicks`` (of its latest snapshot).
    followed: pd.DataFrame
    #: Median over the followed mailings per days since send (the days every one of them has).
    curve: pd.DataFrame
    #: Per followed mailing: the first day its opens reached :data:`SHARE` of the latest.
    day_reached: pd.Series
    snapshot_days: int
    mailings_with_snapshots: int

    @property
    def enough(self) -> bool:
        return self.day_reached.size >= MIN_MAILINGS

    @property
    def median_day(self) -> float | None:
        return float(self.day_reached.median()) if self.enough else None

    def share_on(self, day: int) -> float | None:
        row = self.curve[self.curve.days_since_send == day]
        return None if row.empty else float(row.share_of_final_opens.iloc[0])

    def summary(self) -> str:
        if not self.enough:
            return (
                f"Too few snapshots to tell how opens mature: {self.day_reached.size} of "
                f"{self.mailings_with_snapshots} e-mail mailings have daily snapshots from their "
                f"send day through day {MIN_DAYS} (at least {MIN_MAILINGS} are needed), from "
                f"{self.snapshot_days} snapshot days in the warehouse. The schedule "
                "spotler_statistics_daily adds one a day at 07:00; `make demo` simulates a month."
            )
        shares = ", ".join(
            f"{share:.0%} after {day} day{'s' if day > 1 else ''}"
            for day in (1, 2, 7)
            if (share := self.share_on(day)) is not None
        )
        q1, q3 = self.day_reached.quantile([0.25, 0.75])
        return (
            f"{self.day_reached.size} of {self.mailings_with_snapshots} e-mail mailings were "
            f"followed from their send day for at least {MIN_DAYS} days ({self.snapshot_days} "
            f"snapshot days). Of the opens counted by each mailing's latest snapshot, the median "
            f"mailing had {shares}. {SHARE:.0%} of the opens were in by day "
            f"{self.median_day:g} (median; day {q1:g} to {q3:g} for the middle half of the "
            "mailings); the rest trickles in over the following weeks."
        )


def maturity(snapshots: pd.DataFrame) -> Maturity:
    """Follow each mailing across its own snapshots (``snapshots``: :data:`SNAPSHOT_QUERY`)."""
    frame = snapshots.copy()
    snapshot_days = int(frame.snapshot_day.nunique()) if len(frame) else 0
    mailings = int(frame.mailing_id.nunique()) if len(frame) else 0
    span = frame.groupby("mailing_id").days_since_send.agg(["min", "max"])
    keep = span[(span["min"] <= FIRST_DAY) & (span["max"] >= MIN_DAYS)].index
    followed = frame[frame.mailing_id.isin(keep)].sort_values(["mailing_id", "days_since_send"])
    latest = followed.groupby("mailing_id")[["open_count", "click_count"]].transform("last")
    followed = followed.assign(
        open_rate=followed.open_count / followed.accepted_count,
        rendered_open_rate=followed.open_rendered_count / followed.accepted_count,
        click_rate=followed.click_count / followed.accepted_count,
        share_of_final_opens=followed.open_count / latest.open_count.where(latest.open_count > 0),
        share_of_final_clicks=(
            followed.click_count / latest.click_count.where(latest.click_count > 0)
        ),
    )
    by_day = followed.groupby("days_since_send")
    curve = by_day[
        [
            "open_rate",
            "rendered_open_rate",
            "click_rate",
            "share_of_final_opens",
            "share_of_final_clicks",
        ]
    ]
    curve = curve.median().assign(mailings=by_day.mailing_id.nunique()).reset_index()
    # The same mailings on every day of the curve: a median over whichever mailings happen to
    # reach a day would drop and jump as they come and go (the artefact this module avoids).
    curve = curve[curve.mailings == len(keep)]
    reached = followed[followed.share_of_final_opens >= SHARE]
    day_reached = reached.groupby("mailing_id").days_since_send.min().rename("day_reached")
    return Maturity(followed, curve, day_reached, snapshot_days, mailings)
