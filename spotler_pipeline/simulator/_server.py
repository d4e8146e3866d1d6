"""HTTP/1.1 keep-alive server: one thread per connection, each response in one ``sendall``."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

from spotler_pipeline.simulator._api import PREFIX, Api, ApiError, Request, Response
from spotler_pipeline.simulator._auth import AuthError, OAuthVerifier
from spotler_pipeline.simulator._faults import Fault, FaultBook

ADMIN_PREFIX = "/_simulator/"
_HTML_ERROR = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    b"<body><h1>Bad Gateway</h1><p>The proxy server received an invalid response from an "
    b"upstream server.</p></body></html>\n"
)


@dataclass(frozen=True)
class Backend:
    """What the server answers from. The ``Simulator`` hands these to the server, so this
    module knows nothing of the ``Simulator`` (and the two do not import each other)."""

    api: Api
    verifier: OAuthVerifier
    faults: FaultBook
    now: Callable[[], int]  # the simulated clock, epoch seconds
    admin: Callable[[str, str, bytes], Response]  # (method, path, body) of /_simulator/...
    record: Callable[[str, str, str, int], None]  # (method, path, query, status) of API calls


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, backend: Backend) -> None:
        self.backend = backend
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def close_connections(self) -> None:
        with self.connections_lock:
            for conn in list(self.connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SpotlerSimulator/1.0"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's signature
        """Quiet: requests are recorded in ``Simulator.requests``."""

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length and length.isdigit():
            return self.rfile.read(int(length))
        return b""

    def _write(self, response: Response, cut: int | None = None) -> None:
        """Send ``response``; with ``cut``, announce the full length but send ``cut`` bytes."""
        status = HTTPStatus(response.status)
        headers = {
            "Content-Type": response.content_type,
            "Content-Length": str(len(response.body)),
            "Date": self.date_time_string(),
            "Server": self.server_version,
            **response.headers,
        }
        head = f"HTTP/1.1 {status.value} {status.phrase}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        )
        body = response.body if cut is None else response.body[:cut]
        self.wfile.write(b"".join((head.encode("latin-1"), b"\r\n", body)))

    def _handle(self) -> None:
        """Every method: the admin endpoints take several, the API answers 405 to all but GET."""
        method = self.command
        backend = self.server.backend
        payload = self._read_body()
        raw_path, _, query = self.path.partition("?")
        if raw_path.startswith(ADMIN_PREFIX):
            self._write(backend.admin(method, raw_path, payload))
            return
        fault = None
        try:
            request = Request.parse(self.headers.get("Host", ""), raw_path, query, backend.now())
            request.page_cap = partial(backend.faults.page_cap, raw_path)  # short_pages faults
            request.listing_shift = partial(
                backend.faults.listing_shift, raw_path, request.listing()
            )
            pageable = method == "GET" and request.params.get("after", "0") not in ("", "0")
            fault = backend.faults.take(raw_path, pageable)
            if fault is not None and fault.kind == "slow":
                time.sleep(float(fault.params.get("seconds", 2)))
            if fault is not None and fault.kind == "repeat_page":
                after, size = request.paging()
                request.params["after"] = str(max(0, after - size))
            response = self._fault_response(fault) or self._api(
                method, raw_path, query, request, payload
            )
        except ApiError as exc:
            response = exc.response()
        backend.record(method, raw_path, query, response.status)
        kind = fault.kind if fault else None
        if kind == "drop_connection":
            fraction = float(fault.params.get("fraction", 0.5))
            self._write(response, cut=int(len(response.body) * fraction))
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        elif kind == "truncated_body":
            fraction = float(fault.params.get("fraction", 0.5))
            cut = response.body[: int(len(response.body) * fraction)]
            self._write(Response(response.status, cut, response.content_type))
        elif kind == "not_json":
            self._write(Response(200, _HTML_ERROR, "text/html; charset=utf-8"))
        else:
            self._write(response, cut=0 if method == "HEAD" else None)

    # BaseHTTPRequestHandler calls do_<METHOD>; a method not listed gets its 501.
    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle

    def _fault_response(self, fault: Fault | None) -> Response | None:
        """The early answer of a gateway-level fault (429/5xx), else None."""
        if fault is None:
            return None
        if fault.kind == "rate_limit":
            retry_after = str(fault.params.get("retry_after", 1))
            body = orjson.dumps({"errorType": "TOO_MANY_REQUESTS", "message": "rate limited"})
            return Response(429, body, headers={"Retry-After": retry_after})
        if fault.kind == "server_error":
            status = int(fault.params.get("status", 503))
            body = orjson.dumps({"errorType": "BACKEND_EXCEPTION", "message": "backend failure"})
            headers = {}
            if "retry_after" in fault.params:
                headers["Retry-After"] = str(fault.params["retry_after"])
            return Response(status, body, headers=headers)
        return None

    def _api(
        self, method: str, raw_path: str, query: str, request: Request, payload: bytes
    ) -> Response:
        backend = self.server.backend
        if not raw_path.startswith(PREFIX + "/"):
            raise ApiError(404, "RESOURCE_NOT_FOUND", "no such resource")
        write = None if method == "GET" else backend.api.write_handler(method, request)
        try:
            authorization = self.headers.get("Authorization", "")
            backend.verifier.verify(method, request.host, raw_path, query, authorization)
        except AuthError as exc:
            raise ApiError(401, "NOT_AUTHORIZED", str(exc)) from None
        if write is not None:
            return write(payload)
        return backend.api.handle(request)
