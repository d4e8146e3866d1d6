"""Injected faults behave as documented, via Python and via the admin endpoint."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import datetime

import httpx
import orjson
import pytest

from spotler_pipeline.simulator import Fault, Simulator
from spotler_pipeline.simulator._time import ACCOUNT_TZ
from spotler_pipeline.simulator.testing import SignedSession

NOW = datetime(2025, 5, 5, 12, 0, tzinfo=ACCOUNT_TZ)


@pytest.fixture(scope="module")
def shared() -> Iterator[Simulator]:
    with Simulator(seed=9, scale=0.003, now=NOW, days=10) as simulator:
        yield simulator


@pytest.fixture
def sim(shared: Simulator) -> Iterator[Simulator]:
    shared.clear_faults()
    yield shared
    shared.clear_faults()


@pytest.fixture
def api(sim: Simulator) -> Iterator[SignedSession]:
    with sim.session() as session:
        yield session


def opens_path(sim: Simulator) -> str:
    now = int(sim.now.timestamp())
    mailing = [m for m in sim.account.mailings if m.sent(now) and m.type == "EMAIL"][-1]
    return f"/mailing/{mailing.encrypted_id}/opens"


def test_rate_limit(sim: Simulator, api: SignedSession) -> None:
    sim.inject(Fault("rate_limit", path_pattern="/opens$", retry_after=7))
    limited = api.get(opens_path(sim))
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert api.get(opens_path(sim)).status_code == 200  # times=1 by default


@pytest.mark.parametrize("status", [500, 503])
def test_server_error(sim: Simulator, api: SignedSession, status: int) -> None:
    sim.inject(Fault("server_error", status=status))
    response = api.get("/campaign/list")
    assert response.status_code == status
    assert response.json()["errorType"] == "BACKEND_EXCEPTION"
    assert api.get("/campaign/list").status_code == 200


def test_slow(sim: Simulator, api: SignedSession) -> None:
    sim.inject(Fault("slow", seconds=0.4))
    started = time.perf_counter()
    assert api.get("/campaign/list").status_code == 200
    assert time.perf_counter() - started >= 0.4


def test_drop_connection_announces_more_than_it_sends(sim: Simulator, api: SignedSession) -> None:
    sim.inject(Fault("drop_connection", path_pattern="/opens", fraction=0.3))
    with pytest.raises(httpx.RemoteProtocolError):
        api.get(opens_path(sim))
    # The same on the wire: a full Content-Length, then fewer bytes, then EOF.
    sim.inject(Fault("drop_connection", path_pattern="/opens", fraction=0.3))
    signed, headers = api.sign(api.url(opens_path(sim)))
    url = httpx.URL(signed)
    with socket.create_connection((url.host, url.port), timeout=5) as raw:
        lines = [f"GET {url.raw_path.decode()} HTTP/1.1", f"Host: {url.host}:{url.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        raw.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        received = b""
        while chunk := raw.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(
        next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[
            1
        ]
    )
    assert head.startswith(b"HTTP/1.1 200") and 0 < len(body) < length


def test_truncated_body(sim: Simulator, api: SignedSession) -> None:
    sim.inject(Fault("truncated_body", path_pattern="/opens"))
    response = api.get(opens_path(sim))
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(response.content)


def test_not_json(sim: Simulator, api: SignedSession) -> None:
    sim.inject(Fault("not_json"))
    response = api.get("/campaign/list")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert b"<html>" in response.content


def test_repeat_page(sim: Simulator, api: SignedSession) -> None:
    path = opens_path(sim)
    first = api.get(path, {"pageSize": 3}).content
    second = api.get(path, {"pageSize": 3, "after": 3}).content
    assert first != second
    sim.inject(Fault("repeat_page", path_pattern="/opens"))
    assert api.get(path, {"pageSize": 3}).content == first  # first pages are left alone
    assert api.get(path, {"pageSize": 3, "after": 3}).content == first
    assert api.get(path, {"pageSize": 3, "after": 3}).content == second


def test_after_requests_times_and_pattern(sim: Simulator, api: SignedSession) -> None:
    sim.inject(Fault("server_error", path_pattern="/campaign/list", times=2, after_requests=2))
    statuses = [api.get("/campaign/list").status_code for _ in range(5)]
    assert statuses == [200, 200, 503, 503, 200]
    assert api.get("/form/list").status_code == 200
    assert [s for *_, s in sim.requests[-6:]] == [*statuses, 200]


def test_faults_over_the_admin_endpoint(sim: Simulator, api: SignedSession) -> None:
    admin = sim.admin_url + "/faults"
    response = httpx.post(admin, json=[{"kind": "rate_limit", "times": None, "retry_after": 0}])
    assert response.status_code == 200 and response.json()[0]["kind"] == "rate_limit"
    assert [api.get("/form/list").status_code for _ in range(3)] == [429, 429, 429]
    assert httpx.delete(admin).status_code == 200
    assert api.get("/form/list").status_code == 200
    assert httpx.post(admin, json=[{"kind": "meteor_strike"}]).status_code == 400
