"""Measure how fast the simulator serves interaction rows (cold, then warm).

    python -m spotler_pipeline.simulator.throughput [--rows 1000000] [--page-size 10000]

Builds a simulator with one heavy send day, then fetches every recipients/opens/clicks/
bounces page of its mailing over one keep-alive connection with httpx + oauthlib signing,
parsing nothing (the floor a client pays is not the simulator's cost). Reports rows/s.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timedelta

import httpx
from oauthlib.oauth1 import Client

from spotler_pipeline.simulator import Simulator
from spotler_pipeline.simulator._time import ACCOUNT_TZ

KINDS = ("recipients", "opens", "clicks", "bounces")


def fetch_all(sim: Simulator, mailing_id: str, page_size: int) -> tuple[int, int, float]:
    """(rows, bytes, seconds) for every page of the mailing's four interaction endpoints."""
    signer = Client(sim.consumer_key, client_secret=sim.consumer_secret)
    rows = size = 0
    started = time.perf_counter()
    with httpx.Client(timeout=120) as http:
        for kind in KINDS:
            url = f"{sim.base_url}/mailing/{mailing_id}/{kind}?pageSize={page_size}&after=0"
            while url:
                signed, headers, _ = signer.sign(url, headers={"Accept": "application/json"})
                response = http.get(signed, headers=headers)
                response.raise_for_status()
                body = response.content
                size += len(body)
                rows += body.count(b'"contactIdentifier"')
                marker = body.find(b'"next":"', 0, 600)
                url = body[marker + 8 : body.index(b'"', marker + 8)].decode() if marker > 0 else ""
    return rows, size, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="heavy day size")
    parser.add_argument("--page-size", type=int, default=10_000)
    parser.add_argument("--scale", type=float, default=0.01)
    args = parser.parse_args()
    now = datetime(2025, 6, 1, 12, tzinfo=ACCOUNT_TZ)
    day = (now - timedelta(days=35)).date()
    with Simulator(seed=1, scale=args.scale, now=now, heavy_days={day: args.rows}) as sim:
        heavy = next(m for m in sim.account.mailings if m.heavy)
        for label in ("cold", "warm"):
            rows, size, seconds = fetch_all(sim, heavy.encrypted_id, args.page_size)
            print(
                f"{label}: {rows:,} rows, {size / 1e6:,.0f} MB in {seconds:.2f} s = "
                f"{rows / seconds:,.0f} rows/s ({size / 1e6 / seconds:,.0f} MB/s)"
            )


if __name__ == "__main__":
    main()
