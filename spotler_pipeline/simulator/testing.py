"""A minimal signed HTTP session for talking to a simulator in tests and scripts.

Deliberately independent of ``spotler_pipeline.client``: it signs with oauthlib directly,
so the simulator's tests exercise the published contract, not our client's reading of it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
from oauthlib.oauth1 import Client


def segment(value: str) -> str:
    """Percent-encode one path segment (``a+b@x.nl`` -> ``a%2Bb%40x.nl``)."""
    return quote(value, safe="")


class SignedSession:
    """GETs against ``base_url`` signed with OAuth 1.0a HMAC-SHA1 (one-legged)."""

    def __init__(self, base_url: str, key: str, secret: str, timeout: float = 30) -> None:
        self.base_url = base_url
        self.signer = Client(key, client_secret=secret)
        self.http = httpx.Client(timeout=timeout)

    def url(self, path: str, params: dict[str, Any] | None = None) -> str:
        url = self.base_url + path if path.startswith("/") else path
        return str(httpx.URL(url, params=params)) if params else url

    def sign(self, url: str) -> tuple[str, dict[str, str]]:
        signed, headers, _ = self.signer.sign(url, headers={"Accept": "application/json"})
        return signed, headers

    def get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        signed, headers = self.sign(self.url(path, params))
        return self.http.get(signed, headers=headers)

    def json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        response = self.get(path, params)
        response.raise_for_status()
        return response.json()

    def all_pages(self, path: str, array: str, params: dict[str, Any] | None = None) -> list:
        """Every row of a paged endpoint, following ``paging.next``."""
        rows: list = []
        url: str | None = self.url(path, params)
        while url:
            page = self.json(url)
            rows += page[array]
            url = page["paging"].get("next")
        return rows

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> SignedSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
