"""Account-zone (Europe/Amsterdam) time helpers, vectorised for rendering millions of rows.

Internally every instant is an ``int`` (or numpy ``int64``) of UTC epoch seconds. The API
speaks naive ``yyyy-mm-ddThh:mm:ss`` strings in the account's zone (and takes the
form-result range as ``yyyyMMddHHmmss``, its ``DateParam``).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

ACCOUNT_TZ = ZoneInfo("Europe/Amsterdam")
DAY = 86_400
HOUR = 3_600
NEVER = np.int64(2**62)  # "has not happened" sentinel, later than any simulated clock

_API_DATE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
_DATE_PARAM = re.compile(r"\d{8}(?:\d{6})?")


def parse_api_date(value: str) -> int:
    """Parse a query-string date exactly as documented (``yyyy-mm-ddThh:mm:ss``, account zone).

    Raises ``ValueError`` for anything else (offsets, fractions, dates only, impossible
    dates). Ambiguous wall-clock times at the autumn DST change resolve to the first one.
    """
    if not _API_DATE.fullmatch(value):
        raise ValueError(f"expected yyyy-mm-ddThh:mm:ss, got {value!r}")
    naive = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S")
    return int(naive.replace(tzinfo=ACCOUNT_TZ).timestamp())


def parse_date_param(value: str) -> int:
    """Parse a ``DateParam`` (``yyyyMMddHHmmss``, account zone); without its time part
    (``yyyyMMdd``) it is that day's 00:00:00. Raises ``ValueError`` for anything else."""
    if not _DATE_PARAM.fullmatch(value):
        raise ValueError(f"expected yyyyMMddHHmmss, got {value!r}")
    naive = datetime.strptime(value.ljust(14, "0"), "%Y%m%d%H%M%S")
    return int(naive.replace(tzinfo=ACCOUNT_TZ).timestamp())


def to_epoch(moment: datetime) -> int:
    """Epoch seconds of ``moment``; a naive datetime is taken to be in the account zone."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ACCOUNT_TZ)
    return int(moment.timestamp())


def from_epoch(ts: int) -> datetime:
    """The aware account-zone datetime of epoch seconds ``ts``."""
    return datetime.fromtimestamp(int(ts), tz=ACCOUNT_TZ)


def local_midnight(day: date) -> int:
    """Epoch seconds of 00:00 account time on ``day`` (DST-aware)."""
    return int(datetime(day.year, day.month, day.day, tzinfo=ACCOUNT_TZ).timestamp())


def local_day(ts: int) -> date:
    return from_epoch(ts).date()


def format_one(ts: int) -> str:
    """One naive account-zone timestamp string."""
    return from_epoch(ts).strftime("%Y-%m-%dT%H:%M:%S")


def _last_sunday_0100_utc(year: int, month: int) -> int:
    last = date(year, month + 1, 1) - timedelta(days=1)
    last -= timedelta(days=(last.weekday() + 1) % 7)
    return int(datetime(last.year, last.month, last.day, 1, tzinfo=UTC).timestamp())


@lru_cache(maxsize=1)
def _transitions() -> tuple[np.ndarray, np.ndarray]:
    """EU summer-time switches (last Sunday of March/October, 01:00 UTC) for 1996-2099.

    Europe/Amsterdam has followed this rule since 1996; a test checks it against zoneinfo.
    Returns (sorted switch instants, UTC offset in seconds in force from each switch on).
    """
    points, offsets = [np.iinfo(np.int64).min], [HOUR]
    for year in range(1996, 2100):
        points += [_last_sunday_0100_utc(year, 3), _last_sunday_0100_utc(year, 10)]
        offsets += [2 * HOUR, HOUR]
    return np.array(points, dtype=np.int64), np.array(offsets, dtype=np.int64)


def format_many(ts: np.ndarray) -> list[str]:
    """Naive account-zone strings for an array of epoch seconds (fast path for rendering)."""
    if len(ts) == 0:
        return []
    points, offsets = _transitions()
    local = ts + offsets[np.searchsorted(points, ts, side="right") - 1]
    return np.datetime_as_string(local.astype("datetime64[s]"), unit="s").tolist()
