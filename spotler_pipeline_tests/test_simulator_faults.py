"""Injected faults behave as documented, via Python and via the admin endpoint."""

from __future__ import annotations

import socket
import time
from datetime import datetime

import httpx
import orjson
import pytest

from spotler_pipeline.simulator import Fault, Simulator
from spotler_pipeline.simulator._time import ACCOUNT_TZ
from spotler_pipeline.simulator.testing import SignedSession
from spotler_pipeline_tests.simulators import simulator_fixtures

NOW = datetime(2025, 5, 5, 12, 0, tzinfo=ACCOUNT_TZ)


shared, sim, api = simulator_fixtures(seed=9, scale=0.003, now=NOW, days=10)


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


def recipients_path(sim: Simulator) -> str:
    now = int(sim.now.timestamp())
    sent = [m for m in sim.account.mailings if m.sent(now)]
    mailing = max(sent, key=lambda m: len(sim.account.mailing_data(m).recipients))
    return f"/mailing/{mailing.encrypted_id}/recipients"


def _after(url: str) -> int:
    return int(httpx.URL(url).params["after"])


def test_short_pages_caps_every_page_and_next_follows_the_rows_served(
    sim: Simulator, api: SignedSession
) -> None:
    path = recipients_path(sim)
    whole = api.all_pages(path, "recipients", {"pageSize": 50})
    mailing = sim.account.mailings_by_id[path.split("/")[2]]
    assert len(whole) == len(sim.account.mailing_data(mailing).recipients) > 3 * 7

    fault = sim.inject(Fault("short_pages", path_pattern="/recipients$", max_rows=7, times=None))
    first = api.json(path, {"pageSize": 50})
    assert len(first["recipients"]) == 7
    assert _after(first["paging"]["next"]) == 7  # after + rows served, not after + pageSize
    assert httpx.URL(first["paging"]["next"]).params["pageSize"] == "50"
    middle = api.json(path, {"pageSize": 50, "after": 10})
    assert len(middle["recipients"]) == 7 and _after(middle["paging"]["next"]) == 17
    assert middle["recipients"] == whole[10:17]

    pages = []
    url: str | None = api.url(path, {"pageSize": 50})
    while url:
        page = api.json(url)
        pages.append(page["recipients"])
        url = page["paging"].get("next")
    assert [row for page in pages for row in page] == whole
    assert all(len(p) == 7 for p in pages[:-1]) and 1 <= len(pages[-1]) <= 7
    assert fault.fired == 2 + len(pages)

    # a smaller pageSize than the cap is still honoured
    assert len(api.json(path, {"pageSize": 3})["recipients"]) == 3


def test_short_pages_without_the_fault_next_is_after_plus_rows_served(
    sim: Simulator, api: SignedSession
) -> None:
    path = recipients_path(sim)
    total = len(api.all_pages(path, "recipients", {"pageSize": 50}))
    near_end = api.json(path, {"pageSize": 4, "after": total - 5})
    assert len(near_end["recipients"]) == 4 and _after(near_end["paging"]["next"]) == total - 1
    last = api.json(path, {"pageSize": 4, "after": total - 1})
    assert len(last["recipients"]) == 1 and "next" not in last["paging"]
    beyond = api.json(path, {"pageSize": 4, "after": total + 3})
    assert beyond["recipients"] == [] and "next" not in beyond["paging"]


def test_short_pages_counts_paged_answers_and_lets_other_faults_fire(
    sim: Simulator, api: SignedSession
) -> None:
    path = recipients_path(sim)
    listing = api.get("/campaign/list").content
    fault = sim.inject(Fault("short_pages", max_rows=2, times=2, after_requests=1))
    assert fault.params["max_rows"] == 2
    assert api.get("/campaign/list").content == listing  # unpaged: untouched, not counted
    assert fault.seen == 0
    sizes = [len(api.json(path, {"pageSize": 5})["recipients"]) for _ in range(4)]
    assert sizes == [5, 2, 2, 5]  # skips one paged answer, then fires twice
    assert fault.fired == 2

    sim.clear_faults()
    sim.inject(Fault("short_pages", max_rows=3, times=None))
    sim.inject(Fault("rate_limit", path_pattern="/recipients$", retry_after=0))
    assert api.get(path, {"pageSize": 5}).status_code == 429  # not masked by short_pages
    assert len(api.json(path, {"pageSize": 5})["recipients"]) == 3


def test_short_pages_over_the_admin_endpoint(sim: Simulator, api: SignedSession) -> None:
    admin = sim.admin_url + "/faults"
    spec = {"kind": "short_pages", "path_pattern": "/recipients$", "max_rows": 4, "times": None}
    response = httpx.post(admin, json=[spec])
    assert response.status_code == 200
    (listed,) = response.json()
    assert listed["kind"] == "short_pages" and listed["max_rows"] == 4 and listed["times"] is None
    path = recipients_path(sim)
    assert [len(api.json(path, {"pageSize": 10})["recipients"]) for _ in range(2)] == [4, 4]
    assert httpx.get(admin).json()[0]["fired"] == 2
    for bad in (0, -1, "5", 2.5, True):
        rejected = httpx.post(admin, json=[{"kind": "short_pages", "max_rows": bad}])
        assert rejected.status_code == 400, bad
    assert httpx.delete(admin).status_code == 200
    assert len(api.json(path, {"pageSize": 10})["recipients"]) == 10
    with pytest.raises(ValueError, match="max_rows"):
        Fault("short_pages", max_rows=0)


def test_shifted_listing_repeats_the_last_row_once_per_listing(
    sim: Simulator, api: SignedSession
) -> None:
    path = recipients_path(sim)
    whole = api.all_pages(path, "recipients", {"pageSize": 10000})
    assert len(whole) > 3 * 7
    sim.inject(Fault("shifted_listing", path_pattern="/recipients$", max_rows=7))

    def read(page_size: int) -> list[list]:
        pages, after = [], 0
        while True:
            page = api.json(path, {"pageSize": page_size, "after": after})
            pages.append(page["recipients"])
            if not page["paging"].get("next"):
                return pages
            assert _after(page["paging"]["next"]) == after + len(page["recipients"])
            after += len(page["recipients"])

    pages = read(10000)  # capped at 7 a page under the fault
    assert [len(p) for p in pages[:-1]] == [7] * (len(pages) - 1)
    assert pages[1][0] == pages[0][-1]  # the next page repeats the previous page's last row
    served = [row for page in pages for row in page]
    assert len(served) == len(whole) + 1
    assert served[:7] + served[8:] == whole  # one row repeated, none lost
    # once per listing: a re-read, and another listing (another query), are not shifted
    assert [row for page in read(10000) for row in page] == whole
    assert [row for page in read(5) for row in page] == whole
