"""A scripted fake of Spotler's API for the client tests (an ``httpx.MockTransport``).

No tests here; the ``test_client_*`` modules import it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx
import orjson
import pyarrow as pa

from spotler_pipeline.client import ClientSettings, SpotlerClient
from spotler_pipeline.client.timestamps import parse_api_datetime
from spotler_pipeline.client.values import text
from spotler_pipeline.row_layouts import BatchLayout

KEY = "test-consumer-key"
SECRET = "s3cr3t-Consumer-Secret-value"
BASE_URL = "https://spotler.test/integrationservice-1.1.0"

Handler = Callable[[httpx.Request], httpx.Response]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None):
    return httpx.Response(status, content=orjson.dumps(data), headers=headers)


def error_response(status: int, error_type: str, message: str = "nope", **headers: str):
    return json_response({"errorType": error_type, "message": message}, status, headers)


def rows_of(batches: Iterable[pa.RecordBatch]) -> list[dict[str, Any]]:
    """Every row of a stream of batches (a bulk endpoint's pages), as dicts by column."""
    return [row for batch in batches for row in batch.to_pylist()]


def layout_row(layout: BatchLayout, row: Any, zone: tzinfo) -> dict[str, Any]:
    """What a batch row of ``layout`` holds for the JSON ``row``: each leaf the layout names,
    converted one value at a time (``text``, ``parse_api_datetime``); missing is ``None``."""
    out: dict[str, Any] = {}
    for column in layout.columns:
        value: Any = row
        for key in column.source:
            value = value.get(key) if isinstance(value, dict) else None
        out[column.name] = parse_api_datetime(value, zone) if column.timestamp else text(value)
    return out


def api_path(request: httpx.Request) -> str:
    """The request path relative to the base URL, still percent-encoded."""
    raw = request.url.raw_path.decode().split("?", 1)[0]
    prefix = urlsplit(BASE_URL).path
    assert raw.startswith(prefix), raw
    return raw[len(prefix) :]


def query(request: httpx.Request) -> dict[str, str]:
    return dict(parse_qsl(request.url.query.decode()))


@dataclass
class PagedResource:
    """Serves ``rows`` under ``array_field`` honouring ``after``/``pageSize`` (50 a page
    without ``pageSize``, as the contact histories 10 and 12 page).

    ``next_on_full``: the server sets ``paging.next`` on every full page (even the last one
    of an exact multiple), like a lazy server would; otherwise only when more rows remain.
    """

    array_field: str
    rows: list[Any]
    next_on_full: bool = False
    empty_next: str | None = None  # what "no next" looks like: None = key absent, "" = empty

    def __call__(self, request: httpx.Request) -> httpx.Response:
        q = query(request)
        after, size = int(q["after"]), int(q.get("pageSize", 50))
        page = self.rows[after : after + size]
        more = after + len(page) < len(self.rows) or (self.next_on_full and len(page) == size)
        paging: dict[str, Any] = {"after": after}
        if more:
            paging["next"] = f"https://elsewhere.example/next?after={after + size}"
        elif self.empty_next is not None:
            paging["next"] = self.empty_next
        return json_response({self.array_field: page, "paging": paging})


@dataclass
class FakeSpotler:
    """Routes by path (relative to the base URL, percent-encoded); a route is a handler or
    a list of scripted responses/exceptions consumed in order (the last one repeats)."""

    routes: dict[str, Handler | list[httpx.Response | Exception]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
        route = self.routes.get(api_path(request))
        if route is None:
            return error_response(404, "RESOURCE_NOT_FOUND", f"no route {api_path(request)}")
        if callable(route):
            return route(request)
        with self.lock:
            item = route.pop(0) if len(route) > 1 else route[0]
        if isinstance(item, Exception):
            raise item
        return item

    def paths(self) -> list[str]:
        return [unquote(api_path(r)) for r in self.requests]


def make_client(
    routes: dict[str, Any] | FakeSpotler,
    *,
    sleeps: list[float] | None = None,
    **settings: Any,
) -> tuple[SpotlerClient, FakeSpotler]:
    fake = routes if isinstance(routes, FakeSpotler) else FakeSpotler(routes=dict(routes))
    record = sleeps.append if sleeps is not None else (lambda _s: None)
    client = SpotlerClient(
        ClientSettings(KEY, SECRET, base_url=BASE_URL, **settings),
        httpx.MockTransport(fake),
        sleep=record,
    )
    return client, fake


def contact(i: int) -> dict[str, Any]:
    return {"externalId": f"c{i}@example.nl", "encryptedId": f"enc{i}"}


def open_rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "contactIdentifier": contact(i),
            "openDate": f"2024-05-01T10:{i // 60 % 60:02d}:{i % 60:02d}",
        }
        for i in range(start, start + n)
    ]


def drain(iterable: Iterable[Any]) -> list[Any]:
    return list(iterable)
