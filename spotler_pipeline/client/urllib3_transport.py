"""The bytes of each request, moved by urllib3 under httpx's client.

httpx stays the client: OAuth signing, timeouts, the retry loop in
:mod:`~spotler_pipeline.client.transport` and the tests' injected transports see the same
``httpx.Request`` and ``httpx.Response`` as before. Only the transport underneath changes,
because httpx's own (httpcore + h11) parses every response in Python, 64 KB at a time with
the GIL held: ~4 ms of CPU for a 1 MB page of 10,000 rows, on top of the ~7 ms it takes to
decode it. urllib3 reads a body of known length with one C-level read (``http.client``):
~2 ms. With eight pages in flight on two cores, the 4M-row day's fetch took 0.3-0.7 s
less (docs/benchmark-log.md, "Lighter pages").

urllib3 is already installed with Dagster (through ``requests``); its errors are raised as
the httpx errors httpx's own transport raises for the same failure, so what is retried and
what the error says do not depend on the transport. :func:`default_transport` keeps httpx's
own transport where a proxy from the environment applies (httpx reads those only for its
own transport).
"""

from __future__ import annotations

import http.client
import re
import urllib.request
from collections.abc import Mapping

import httpx
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.exceptions import TimeoutError as Urllib3Timeout

__all__ = ["Urllib3Transport", "default_transport"]

# "HTTPConnection(host='h', port=80): Failed to establish a new connection: [Errno 111]
# Connection refused" -> "[Errno 111] Connection refused", as httpx says it.
_PREFIX = re.compile(r"^(?:<[^>]*>|\w+\(host=[^)]*\)): (?:Failed to establish a new connection: )?")


class Urllib3Transport(httpx.BaseTransport):
    """An ``httpx`` transport sending each request through a urllib3 connection pool.

    ``max_connections`` connections are kept open per host (the client's request cap);
    TLS is verified as httpx verifies it (certifi's bundle, or ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR``). Redirects are not followed and nothing is retried here: both are
    the caller's decision.
    """

    def __init__(self, *, max_connections: int) -> None:
        self._pools = urllib3.PoolManager(
            num_pools=4,
            maxsize=max(1, max_connections),
            block=False,
            retries=False,
            ssl_context=httpx.create_ssl_context(),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        pool = self._pools.connection_from_host(url.host, url.port, scheme=url.scheme)
        try:
            answer = pool.urlopen(
                request.method,
                # The path and query exactly as signed: urllib3 would re-encode a full URL.
                url.raw_path.decode("ascii"),
                body=request.read() or None,
                headers=urllib3.HTTPHeaderDict(
                    [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
                ),
                retries=False,
                redirect=False,
                assert_same_host=False,
                timeout=_timeout(request.extensions.get("timeout", {})),
                preload_content=True,
                # httpx decodes gzip and friends itself, from the headers passed on.
                decode_content=False,
            )
        except HTTPError as exc:
            raise _as_httpx_error(exc, request) from None
        return httpx.Response(
            answer.status,
            headers=list(answer.headers.items()),
            stream=httpx.ByteStream(answer.data),
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (answer.reason or "").encode("ascii", "replace"),
            },
        )

    def close(self) -> None:
        self._pools.clear()


def default_transport(base_url: str, max_connections: int) -> httpx.BaseTransport | None:
    """A :class:`Urllib3Transport` for ``base_url``, or ``None`` (httpx's own transport)
    where a proxy from the environment (``HTTPS_PROXY``, ``ALL_PROXY``…) applies to it."""
    url = httpx.URL(base_url)
    proxies = urllib.request.getproxies_environment()
    wanted = {url.scheme, "all"} & {k for k, v in proxies.items() if v}
    if wanted and not urllib.request.proxy_bypass_environment(url.host, proxies):
        return None
    return Urllib3Transport(max_connections=max_connections)


def _timeout(seconds: Mapping[str, float | None]) -> urllib3.Timeout:
    return urllib3.Timeout(connect=seconds.get("connect"), read=seconds.get("read"))


def _as_httpx_error(exc: HTTPError, request: httpx.Request) -> httpx.TransportError:
    """The httpx error (and message) httpx's own transport raises for the same failure."""
    cause = exc.args[1] if isinstance(exc, ProtocolError) and len(exc.args) == 2 else None
    detail = _PREFIX.sub("", str(exc))
    kind: type[httpx.TransportError] = httpx.RemoteProtocolError
    if isinstance(exc, ProxyError):
        kind = httpx.ProxyError
    elif isinstance(exc, NewConnectionError | SSLError):
        kind = httpx.ConnectError
    elif isinstance(exc, ConnectTimeoutError):
        kind = httpx.ConnectTimeout
    elif isinstance(exc, ReadTimeoutError | Urllib3Timeout):
        kind, detail = httpx.ReadTimeout, "timed out"
    elif isinstance(cause, http.client.IncompleteRead):
        got = cause.partial if isinstance(cause.partial, int) else len(cause.partial)
        detail = (
            "peer closed connection without sending complete message body "
            f"(received {got} bytes, expected {got + (cause.expected or 0)})"
        )
    elif isinstance(cause, http.client.RemoteDisconnected):
        detail = "Server disconnected without sending a response."
    elif isinstance(cause, http.client.HTTPException):
        detail = f"{type(cause).__name__}: {cause}"  # e.g. BadStatusLine: an illegal status line
    elif isinstance(cause, OSError):
        kind, detail = httpx.ReadError, str(cause)  # e.g. [Errno 104] Connection reset by peer
    return kind(detail, request=request)
