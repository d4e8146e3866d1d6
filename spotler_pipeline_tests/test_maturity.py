"""Following each mailing across its own snapshots (``spotler_pipeline.maturity``)."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from spotler_pipeline.maturity import MIN_DAYS, maturity

SEND = date(2026, 5, 1)


def _snapshots(mailings: dict[str, tuple[int, int, list[int]]]) -> pd.DataFrame:
    """``{id: (first age, last age, opens by age)}`` -> rows as SNAPSHOT_QUERY returns them."""
    rows = []
    for n, (mailing, (first, last, opens)) in enumerate(mailings.items()):
        send = SEND + timedelta(days=n)
        for age in range(first, last + 1):
            rows.append(
                {
                    "mailing_id": mailing,
                    "name": f"Nieuwsbrief {n} ({send})",
                    "send_day": send,
                    "snapshot_day": send + timedelta(days=age),
                    "days_since_send": age,
                    "accepted_count": 1000,
                    "open_count": opens[min(age, len(opens) - 1)],
                    "open_rendered_count": opens[min(age, len(opens) - 1)] * 9 // 10,
                    "click_count": opens[min(age, len(opens) - 1)] // 10,
                }
            )
    return pd.DataFrame(rows)


# Opens by day since send: 70% of the final 400 after a day, 90% by day 3, then a tail.
CURVE = [0, 280, 330, 360, 370, 380, 385, 390, 392, 394, 396, 397, 398, 399, 400]


def test_each_mailing_is_followed_from_its_send_and_the_median_day_is_named() -> None:
    data = _snapshots(
        {
            "a": (0, 20, CURVE),
            "b": (1, 18, CURVE),
            "c": (0, MIN_DAYS, CURVE),
            "d": (5, 25, CURVE),  # first seen 5 days after its send: not followed
            "e": (0, 6, CURVE),  # followed only a week: not followed
        }
    )
    m = maturity(data)
    assert m.enough
    assert sorted(m.day_reached.index) == ["a", "b", "c"]
    assert m.median_day == 3
    assert m.share_on(1) == 0.7
    text = m.summary()
    assert "3 of 5 e-mail mailings were followed from their send day" in text
    assert "70% after 1 day" in text and "90% of the opens were in by day 3" in text
    # Day 0 has two mailings only (b was first seen a day after its send): no median.
    assert set(m.curve.days_since_send) >= set(range(1, MIN_DAYS + 1))


def test_too_few_snapshots_to_tell_is_said_plainly() -> None:
    m = maturity(_snapshots({"a": (0, 7, CURVE), "b": (3, 9, CURVE), "c": (0, 20, CURVE)}))
    assert not m.enough and m.median_day is None
    assert m.summary().startswith("Too few snapshots to tell how opens mature: 1 of 3")
    columns = _snapshots({"a": (0, 1, CURVE)}).columns
    empty = maturity(pd.DataFrame(columns=columns))
    assert "0 of 0 e-mail mailings" in empty.summary()
