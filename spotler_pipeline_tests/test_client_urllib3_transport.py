"""The urllib3 transport under the client behaves as httpx's own transport does.

Each case is a real socket server answering (or failing) in one way; the same request goes
through both transports, and what comes back (the answer, or the httpx error and its
message) must be the same. That is what keeps the retry loop and the error messages of
:mod:`~spotler_pipeline.client.transport` independent of the transport.
"""

from __future__ import annotations

import gzip
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from spotler_pipeline.client.settings import ClientSettings
from spotler_pipeline.client.transport import Requester
from spotler_pipeline.client.urllib3_transport import Urllib3Transport, default_transport

Behaviour = Callable[[socket.socket, bytes], None]


def _answer(raw: bytes) -> Behaviour:
    def behave(conn: socket.socket, _request: bytes) -> None:
        conn.sendall(raw)

    return behave


def _hang(conn: socket.socket, _request: bytes) -> None:
    time.sleep(1.5)


def _close(conn: socket.socket, _request: bytes) -> None:
    pass


def _reset(conn: socket.socket, _request: bytes) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


GZIPPED = gzip.compress(b'{"sentCount": 10}')

BEHAVIOURS: dict[str, Behaviour] = {
    "json": _answer(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n"
        b'Connection: close\r\n\r\n{"sentCount": 10}'
    ),
    "gzip": _answer(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n"
        b"Connection: close\r\n\r\n%s" % (len(GZIPPED), GZIPPED)
    ),
    "chunked-503": _answer(
        b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n"
        b"Retry-After: 7\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n5\r\nbusy!\r\n0\r\n\r\n"
    ),
    "short-body": _answer(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"),
    "closed-before-answer": _close,
    "reset": _reset,
    "no-answer": _hang,
}


@pytest.fixture
def serve() -> Iterator[Callable[..., tuple[str, list[bytes]]]]:
    """``serve(behaviour, tls=None)`` -> (base URL, raw requests received) of a one-thread
    server that treats every connection with ``behaviour`` and closes it (HTTPS with the
    server context ``tls``)."""
    sockets: list[socket.socket] = []

    def start(behaviour: Behaviour, tls: ssl.SSLContext | None = None) -> tuple[str, list[bytes]]:
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        sockets.append(server)
        seen: list[bytes] = []

        def run() -> None:
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return  # the test is over
                if tls is not None:
                    try:
                        conn = tls.wrap_socket(conn, server_side=True)
                    except OSError:  # SSLError too: a client that refused our certificate
                        conn.close()
                        continue
                with conn:
                    request = conn.recv(65536)
                    seen.append(request)
                    behaviour(conn, request)

        threading.Thread(target=run, daemon=True).start()
        scheme = "https" if tls is not None else "http"
        return f"{scheme}://127.0.0.1:{server.getsockname()[1]}", seen

    yield start
    for s in sockets:
        s.close()


def _outcome(transport: httpx.BaseTransport | None, url: str) -> tuple:
    with httpx.Client(transport=transport, timeout=httpx.Timeout(0.5)) as client:
        try:
            r = client.get(url)
        except httpx.TransportError as exc:
            return type(exc), str(exc)
        return (
            r.status_code,
            r.reason_phrase,
            r.content,
            r.headers.get("retry-after"),
            r.headers.get_list("set-cookie"),
            r.http_version,
        )


@pytest.mark.parametrize("case", sorted(BEHAVIOURS))
def test_answers_and_failures_are_those_of_httpx(serve, case: str) -> None:
    url, _ = serve(BEHAVIOURS[case])
    ours = _outcome(Urllib3Transport(max_connections=2), url + "/mailing/M1")
    theirs = _outcome(None, url + "/mailing/M1")
    if case == "closed-before-answer" and theirs[0] is httpx.ReadError:
        theirs = (httpx.RemoteProtocolError, ours[1])  # h11 says either, by timing
    assert ours == theirs


def test_a_refused_connection_is_a_connect_error_saying_so() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x"
    ours = _outcome(Urllib3Transport(max_connections=1), url)
    assert ours == _outcome(None, url)
    assert ours == (httpx.ConnectError, "[Errno 111] Connection refused")


def test_the_path_and_query_are_sent_exactly_as_signed(serve) -> None:
    """The OAuth signature covers the URL as httpx encodes it; urllib3 must not re-encode."""
    url, seen = serve(BEHAVIOURS["json"])
    path = "/contact/jan%2Bnews%40example.nl/mailings"
    params = {"after": 0, "pageSize": 10000, "q": "a b/c"}
    for transport in (Urllib3Transport(max_connections=1), None):
        with httpx.Client(transport=transport) as client:
            client.get(url + path, params=params, headers={"Authorization": "OAuth x"})
    ours, theirs = (r.split(b"\r\n")[0] for r in seen)
    line = b"GET /contact/jan%2Bnews%40example.nl/mailings?after=0&pageSize=10000&q=a+b%2Fc"
    assert ours == theirs == line + b" HTTP/1.1"
    # The same headers too (the signature, httpx's Accept-Encoding and User-Agent…).
    assert sorted(seen[0].split(b"\r\n")) == sorted(seen[1].split(b"\r\n"))
    assert b"Authorization: OAuth x" in seen[0]


def test_the_client_retries_a_dropped_connection_through_it(serve) -> None:
    """End to end through :class:`Requester` and its default transport: a connection cut
    mid-body is retried, and the second answer is used."""
    calls = []

    def first_short_then_whole(conn: socket.socket, request: bytes) -> None:
        calls.append(request)
        name = "short-body" if len(calls) == 1 else "json"
        BEHAVIOURS[name](conn, request)

    url, _ = serve(first_short_then_whole)
    settings = ClientSettings(
        consumer_key="k", consumer_secret="s", base_url=url, max_attempts=3, timeout=2
    )
    requester = Requester(settings, sleep=lambda _: None)
    assert isinstance(requester._http._transport, Urllib3Transport)
    assert requester.get("/mailing/M1", None, lambda body: body) == b'{"sentCount": 10}'
    assert requester.request_count == 2


@pytest.mark.parametrize(
    ("env", "urllib3"),
    [
        ({}, True),
        ({"HTTPS_PROXY": "http://proxy:3128"}, False),
        ({"ALL_PROXY": "http://proxy:3128"}, False),
        ({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "api.example.com"}, True),
        ({"HTTP_PROXY": "http://proxy:3128"}, True),  # for http:// only
    ],
)
def test_a_proxy_from_the_environment_keeps_httpx_own_transport(
    monkeypatch, env: dict[str, str], urllib3: bool
) -> None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"):
        for variant in (name, name.lower()):
            monkeypatch.delenv(variant, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    transport = default_transport("https://api.example.com/integrationservice-1.1.0", 4)
    assert isinstance(transport, Urllib3Transport) is urllib3


@pytest.fixture
def tls_server(tmp_path, serve) -> tuple[str, str]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate: (base URL, its PEM)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    url, _ = serve(BEHAVIOURS["json"], tls=context)
    return url, str(cert)


def test_tls_is_verified_against_the_ca_httpx_would_use(tls_server, monkeypatch) -> None:
    """An unknown certificate is refused (as httpx refuses it); the same server is trusted
    once its CA is named in ``SSL_CERT_FILE``."""
    url, cert = tls_server
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    refused = _outcome(Urllib3Transport(max_connections=1), url + "/x")
    assert refused[0] is httpx.ConnectError
    assert "CERTIFICATE_VERIFY_FAILED" in refused[1]
    assert _outcome(None, url + "/x")[0] is httpx.ConnectError
    monkeypatch.setenv("SSL_CERT_FILE", cert)
    trusted = _outcome(Urllib3Transport(max_connections=1), url + "/x")
    assert trusted[:3] == (200, "OK", b'{"sentCount": 10}')
