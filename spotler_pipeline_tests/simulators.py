"""Simulator fixtures and a client for it, as several test modules set them up.

No tests here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from spotler_pipeline.client import ClientSettings, SpotlerClient
from spotler_pipeline.simulator import Simulator
from spotler_pipeline.simulator.testing import SignedSession


def simulator_fixtures(scope: str = "module", **settings: Any) -> tuple[Any, Any, Any]:
    """Three fixtures for a test module, to bind at its top level (``shared, sim, api =
    simulator_fixtures(seed=..., ...)``): ``shared``, one ``Simulator(**settings)`` started
    per ``scope``; ``sim``, that simulator with no faults injected as each test starts and
    ends; ``api``, a signed HTTP session to it (see ``simulator.testing``)."""

    @pytest.fixture(scope=scope, name="shared")
    def shared_fixture() -> Iterator[Simulator]:
        with Simulator(**settings) as simulator:
            yield simulator

    @pytest.fixture(name="sim")
    def sim_fixture(shared: Simulator) -> Iterator[Simulator]:
        shared.clear_faults()
        yield shared
        shared.clear_faults()

    @pytest.fixture(name="api")
    def api_fixture(sim: Simulator) -> Iterator[SignedSession]:
        with sim.session() as session:
            yield session

    return shared_fixture, sim_fixture, api_fixture


def simulator_client(sim: Simulator, **overrides: Any) -> SpotlerClient:
    """Our client for ``sim``, with a 5 s timeout and ``overrides`` of its settings
    (``sleep``, ``clock``: the client's own keyword arguments)."""
    options: dict[str, Any] = {
        "consumer_key": sim.consumer_key,
        "consumer_secret": sim.consumer_secret,
        "base_url": sim.base_url,
        "timeout": 5.0,
        **overrides,
    }
    hooks = {k: options.pop(k) for k in ("sleep", "clock") if k in options}
    return SpotlerClient(ClientSettings(**options), **hooks)
