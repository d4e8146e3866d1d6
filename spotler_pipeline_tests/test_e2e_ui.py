"""What a person sees in the Dagster UI, in a real browser.

Headless Chromium from Debian's packages (``/usr/bin/chromium``), driven by Playwright for
Python with that system browser (never ``playwright install``), opens the running
``dagster dev`` (shared with the backfill test when both run), and saves screenshots under
``test-artifacts/ui/``: the asset lineage with the Spotler groups, the mailings group's
graph, and an asset's page with its freshness status and metadata.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from spotler_pipeline_tests.e2e_dagster import DagsterDev, shared_dagster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

CHROMIUM = Path(os.environ.get("SPOTLER_E2E_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "ui"
FRESHNESS_STATES = ("Passing", "Warning", "Failing")


def ensure_chromium() -> Path:
    """The system Chromium; installed from Debian's packages when missing and we may.

    ``make test`` installs it beforehand; this covers a bare ``pytest`` on a fresh machine.
    Skips only when it cannot be installed here (not root, or no apt-get).
    """
    if CHROMIUM.exists():
        return CHROMIUM
    apt = shutil.which("apt-get")
    if os.geteuid() != 0 or apt is None:
        pytest.skip(
            f"{CHROMIUM} is missing and cannot be installed here "
            f"({'no apt-get' if apt is None else 'not root'}): "
            "install Debian's `chromium` package to run the browser test"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([apt, "update", "-qq"], check=True, env=env)
    subprocess.run([apt, "install", "-y", "-qq", "chromium"], check=True, env=env)
    assert CHROMIUM.exists(), f"apt-get installed chromium but {CHROMIUM} is missing"
    return CHROMIUM


@pytest.fixture(scope="module")
def dagster() -> DagsterDev:
    instance = shared_dagster()
    _ensure_materialized(instance)
    return instance


def _ensure_materialized(dagster: DagsterDev) -> None:
    """Give the asset page something to show when this test runs without the backfill."""
    stats = dagster.asset_nodes()["spotler/mailings"]["partitionStats"]
    if stats and stats["numMaterialized"]:
        return
    yesterday = (dagster.today - timedelta(days=1)).isoformat()
    backfill_id = dagster.launch_backfill(["mailings", "mailing_links"], [yesterday])
    state = dagster.wait_for(
        "a one-day backfill",
        lambda: (s := dagster.backfill(backfill_id))["status"] not in ("REQUESTED",) and s,
        timeout=300,
    )
    assert state["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), state


@pytest.fixture
def page() -> Iterator[Any]:
    executable = ensure_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(executable), args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = browser.new_context(viewport={"width": 1600, "height": 1000})
            context.set_default_timeout(60_000)
            yield context.new_page()
        finally:
            browser.close()


def _open(page: Any, url: str, *, expect: str) -> None:
    page.goto(url, wait_until="networkidle")
    # First visit: Dagster asks to join its community; a person clicks "Skip".
    skip = page.get_by_role("button", name="Skip")
    if skip.count():
        skip.first.click()
    page.get_by_text(expect, exact=True).first.wait_for()


def _shot(page: Any, name: str, *, full_page: bool = False) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 10_000, f"{path} looks empty"
    return path


def test_asset_graph_groups_and_an_asset_page(dagster: DagsterDev, page: Any) -> None:
    nodes = dagster.asset_nodes()
    spotler = {k: n for k, n in nodes.items() if k.startswith("spotler/")}
    groups = sorted({n["groupName"] for n in spotler.values()})
    assert {"mailings", "campaigns"} <= set(groups), groups

    # The global lineage: every Spotler group.
    _open(page, f"{dagster.url}/asset-groups", expect="Global asset lineage")
    for group in groups:
        page.get_by_text(group, exact=True).first.wait_for()
    page.get_by_text("fetching statuses").first.wait_for(state="detached")
    _shot(page, "01_asset_lineage_groups")

    # One group's graph: its assets as nodes.
    mailing_assets = sorted(
        k.split("/", 1)[1] for k, n in spotler.items() if n["groupName"] == "mailings"
    )
    _open(
        page,
        f"{dagster.url}/locations/{dagster.location}/asset-groups/mailings",
        expect=mailing_assets[0],
    )
    _shot(page, "02_group_mailings_graph")
    # The graph draws only the nodes in view; the List tab names every asset of the group.
    # A dialog Dagster sometimes opens over a fresh page (its backdrop took the click in one
    # clean-clone run) is closed first; Escape does nothing when none is open.
    page.keyboard.press("Escape")
    page.locator(".bp5-overlay-backdrop").wait_for(state="detached")
    page.get_by_text("List", exact=True).first.click()
    page.get_by_text(mailing_assets[-1], exact=True).first.wait_for()
    body = page.inner_text("body")
    missing = [a for a in mailing_assets if a not in body]
    assert not missing, f"not listed in the mailings group: {missing}"
    _shot(page, "02b_group_mailings_list")

    # An asset: freshness status (evaluated by the daemon) and its metadata.
    asset_url = f"{dagster.url}/assets/spotler/mailings"
    _open(page, asset_url, expect="Freshness policy")
    deadline = time.monotonic() + 120
    while not any(s in page.inner_text("body") for s in FRESHNESS_STATES):
        assert time.monotonic() < deadline, "the freshness policy was never evaluated"
        page.wait_for_timeout(5000)
        page.reload(wait_until="networkidle")
        page.get_by_text("Freshness policy", exact=True).first.wait_for()
    body = page.inner_text("body")
    assert "Passing" in body, "mailings were just backfilled, so they should be fresh"
    for expected in ("Row count", "spotler.mailings", "encrypted_id", "scheduled_start_date"):
        assert expected in body, f"{expected!r} not on the asset page"
    _shot(page, "03_asset_mailings_overview", full_page=True)

    # The materialisation's own metadata, as the Events tab lists it.
    _open(page, f"{asset_url}?view=events", expect="rows_written")
    body = page.inner_text("body")
    for expected in ("rows_written", "api_requests", "partition_window"):
        assert expected in body, f"{expected!r} not in the materialisation metadata"
    _shot(page, "04_asset_mailings_events")
