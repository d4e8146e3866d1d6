"""OAuth 1.0a "one-legged" request signing, as an ``httpx.Auth``."""

from __future__ import annotations

from collections.abc import Generator

import httpx
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_TYPE_AUTH_HEADER, Client

__all__ = ["OAuth1Auth"]


class OAuth1Auth(httpx.Auth):
    """Signs every request with HMAC-SHA1 using only the consumer key and secret (no token).

    The signature covers the URL exactly as httpx will send it (``str(request.url)``, so
    percent-encoded path segments are signed in their encoded form) plus its query parameters.
    """

    def __init__(self, consumer_key: str, consumer_secret: str) -> None:
        self._consumer_key = consumer_key
        self._oauth = Client(
            consumer_key,
            client_secret=consumer_secret,
            signature_method=SIGNATURE_HMAC_SHA1,
            signature_type=SIGNATURE_TYPE_AUTH_HEADER,
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # A fresh nonce and timestamp per call: oauthlib's Client.sign does not keep state
        # between calls, so one instance is safe to share between threads.
        _, headers, _ = self._oauth.sign(str(request.url), http_method=request.method)
        request.headers["Authorization"] = headers["Authorization"]
        yield request

    def __repr__(self) -> str:
        return "OAuth1Auth(consumer_key='****', consumer_secret='****')"
