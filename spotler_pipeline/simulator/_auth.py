"""OAuth 1.0a one-legged (consumer key + secret, no token) HMAC-SHA1 verification.

The signature base string is rebuilt from the request exactly as received: method, the
``Host`` header, the percent-encoded path as it came over the wire and the raw query
string. oauthlib's signature module does the RFC 5849 work.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from oauthlib.common import safe_string_equals
from oauthlib.oauth1.rfc5849 import signature

TIMESTAMP_WINDOW = 300  # seconds either side of real time, as commonly enforced


class AuthError(Exception):
    """The request is not (correctly) signed; the message says why."""


@dataclass
class _SignedRequest:
    """The attributes ``signature.verify_hmac_sha1`` reads."""

    http_method: str
    uri: str
    params: list[tuple[str, str]]
    signature: str


class OAuthVerifier:
    def __init__(self, consumer_key: str, consumer_secret: str) -> None:
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self._nonces: dict[str, float] = {}
        self._lock = threading.Lock()
        self._last_prune = time.time()

    def verify(self, method: str, host: str | None, path: str, query: str, authorization: str):
        if not authorization or not authorization[:6].lower() == "oauth ":
            raise AuthError("missing OAuth Authorization header")
        if not host:
            raise AuthError("missing Host header")
        try:
            params = signature.collect_parameters(
                uri_query=query,
                headers={"Authorization": authorization},
                exclude_oauth_signature=False,
            )
        except (ValueError, TypeError) as exc:
            raise AuthError(f"malformed OAuth parameters: {exc}") from None
        oauth: dict[str, str] = {}
        for key, value in params:
            if key.startswith("oauth_"):
                if key in oauth:
                    raise AuthError(f"duplicate OAuth parameter {key}")
                oauth[key] = value
        for required in (
            "oauth_consumer_key",
            "oauth_signature_method",
            "oauth_signature",
            "oauth_timestamp",
            "oauth_nonce",
        ):
            if not oauth.get(required):
                raise AuthError(f"missing {required}")
        if not safe_string_equals(oauth["oauth_consumer_key"], self.consumer_key):
            raise AuthError("unknown consumer key")
        if oauth["oauth_signature_method"] != "HMAC-SHA1":
            raise AuthError("oauth_signature_method must be HMAC-SHA1")
        if oauth.get("oauth_version", "1.0") != "1.0":
            raise AuthError("oauth_version must be 1.0")
        if oauth.get("oauth_token"):
            raise AuthError("this API is one-legged: no oauth_token expected")
        stamp = oauth["oauth_timestamp"]
        now = time.time()
        if not stamp.isdigit() or abs(now - int(stamp)) > TIMESTAMP_WINDOW:
            raise AuthError("oauth_timestamp is missing, malformed or too far from the server time")
        request = _SignedRequest(
            http_method=method,
            uri=f"http://{host}{path}",
            params=[(k, v) for k, v in params if k != "oauth_signature"],
            signature=oauth["oauth_signature"],
        )
        if not signature.verify_hmac_sha1(request, self.consumer_secret, ""):
            raise AuthError("invalid signature")
        nonce = oauth["oauth_nonce"]
        with self._lock:
            if now - self._last_prune > TIMESTAMP_WINDOW:
                cutoff = now - 2 * TIMESTAMP_WINDOW
                self._nonces = {n: t for n, t in self._nonces.items() if t >= cutoff}
                self._last_prune = now
            if nonce in self._nonces:
                raise AuthError("nonce already used")
            self._nonces[nonce] = now
