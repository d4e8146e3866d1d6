"""Signing, URL encoding, headers and keeping the secret secret."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import httpx
import pytest
from oauthlib.oauth1.rfc5849 import signature, utils

from spotler_pipeline.client import ClientSettings, SpotlerAuthError, SpotlerError
from spotler_pipeline.client.auth import OAuth1Auth
from spotler_pipeline_tests.test_client_support import (
    SECRET,
    PagedResource,
    error_response,
    json_response,
    make_client,
    open_rows,
)


def _verify_signature(request: httpx.Request, key: str, secret: str) -> dict[str, str]:
    """Recompute the HMAC-SHA1 signature with oauthlib's RFC 5849 primitives."""
    header = request.headers["Authorization"]
    assert header.startswith("OAuth ")
    oauth = {k: utils.unescape(v) for k, v in utils.parse_authorization_header(header)}
    uri = str(request.url)
    params = signature.collect_parameters(
        uri_query=urlsplit(uri).query, headers={"Authorization": header}
    )
    base = signature.signature_base_string(
        request.method, signature.base_string_uri(uri), signature.normalize_parameters(params)
    )
    expected = signature.sign_hmac_sha1(base, secret, "")
    assert oauth["oauth_signature"] == expected
    assert oauth["oauth_consumer_key"] == key
    assert oauth["oauth_signature_method"] == "HMAC-SHA1"
    assert "oauth_token" not in oauth
    return oauth


CONTACT_ID = "a+b@x.nl"


@pytest.mark.parametrize(
    ("call", "raw_path"),
    [
        (lambda c: c.get_mailing_statistics("m/1 ?&"), "/mailing/m%2F1%20%3F%26/statistics"),
        (lambda c: list(c.iter_contact_form_history(CONTACT_ID)), "/contact/a%2Bb%40x.nl/forms"),
        (
            lambda c: list(c.iter_mailing_contact_opens("M1", CONTACT_ID)),
            "/mailing/M1/opens/a%2Bb%40x.nl",
        ),
    ],
)
def test_ids_are_one_encoded_segment_and_the_signature_covers_the_url_sent(call, raw_path):
    def handler(request: httpx.Request) -> httpx.Response:
        if "statistics" in raw_path:
            return json_response({"sentCount": 1})
        return json_response({"formHistories": [], "opens": [], "paging": {}})

    client, fake = make_client({raw_path: handler})
    call(client)
    (request,) = fake.requests
    assert request.url.raw_path.decode().split("?")[0].endswith(raw_path)
    _verify_signature(request, "test-consumer-key", SECRET)


def test_query_parameters_are_signed_and_accept_is_json():
    client, fake = make_client({"/mailing/M1/opens": PagedResource("opens", open_rows(3))})
    list(client.mailing_open_batches("M1"))
    (request,) = fake.requests
    assert request.headers["Accept"] == "application/json"
    assert request.url.params["pageSize"] == "10000"
    oauth = _verify_signature(request, "test-consumer-key", SECRET)
    assert oauth["oauth_nonce"]
    # A signature made with another secret must not match.
    with pytest.raises(AssertionError):
        _verify_signature(request, "test-consumer-key", "other-secret")


def test_each_request_gets_a_fresh_nonce():
    client, fake = make_client({"/mailing/M1/statistics": [json_response({})]})
    client.get_mailing_statistics("M1")
    client.get_mailing_statistics("M1")
    nonces = {
        dict(utils.parse_authorization_header(r.headers["Authorization"]))["oauth_nonce"]
        for r in fake.requests
    }
    assert len(nonces) == 2


def test_secret_is_not_in_any_repr():
    settings = ClientSettings("key", SECRET)
    client, _ = make_client({})
    for text in (
        repr(settings),
        str(settings),
        repr(client),
        repr(OAuth1Auth("key", SECRET)),
        repr(client._requester._http.auth),
    ):
        assert SECRET not in text


@pytest.mark.parametrize("status", [401, 403, 404, 400, 500])
def test_secret_never_in_errors_or_logs(status, caplog):
    """Even when the server echoes the secret back, errors and logs never carry it."""
    caplog.set_level(logging.DEBUG)
    response = error_response(status, "NOT_AUTHORIZED", f"bad signature for secret {SECRET}")
    client, _ = make_client({"/mailing/M1/statistics": [response]}, max_attempts=2)
    with pytest.raises(SpotlerError) as info:
        client.get_mailing_statistics("M1")
    error = info.value
    for text in (str(error), repr(error), error.message, str(error.error_type), caplog.text):
        assert SECRET not in text
    assert "****" in str(error)


def test_missing_credentials_name_the_env_vars():
    with pytest.raises(ValueError, match="SPOTLER_CONSUMER_KEY"):
        ClientSettings("", "")


def test_auth_error_is_a_spotler_error_carrying_the_endpoint():
    client, _ = make_client({"/campaign/list": [error_response(401, "AUTH_NOT_FOUND")]})
    with pytest.raises(SpotlerAuthError) as info:
        client.list_campaigns()
    assert isinstance(info.value, SpotlerError)
    assert info.value.endpoint == "/campaign/list"
