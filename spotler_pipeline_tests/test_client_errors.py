"""Spotler's errors by their contract name: every ``errorType`` a typed error that says what
to do, credentials named but never shown, and an unknown contact an empty history."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import orjson
import pytest

import spotler_pipeline.simulator
from spotler_pipeline.client import (
    ERROR_TYPES,
    SpotlerAuthError,
    SpotlerContactNotFoundError,
    SpotlerError,
    SpotlerNotFoundError,
    SpotlerRequestError,
    SpotlerUnavailableError,
    contact_tag,
)
from spotler_pipeline.defs.contact_assets import HISTORIES, history_pages
from spotler_pipeline.defs.fetching import FetchTask, fetch_into
from spotler_pipeline.warehouse import StagingArea
from spotler_pipeline_tests.test_client_support import (
    KEY,
    SECRET,
    error_response,
    json_response,
    make_client,
)

PATH = "/mailing/M1/statistics"
CONTRACT = Path(spotler_pipeline.simulator.__file__).with_name("spotler-api-docs.json")


def contract_error_types() -> set[str]:
    """The ``ErrorType`` enum of Spotler's published contract (every resource names the same
    one)."""
    docs = orjson.loads(CONTRACT.read_bytes())
    resources = docs if isinstance(docs, list) else docs.get("apis", [docs])
    found: set[str] = set()
    for resource in resources:
        model = resource.get("models", {}).get("ErrorResponse")
        if model is not None:
            found.update(model["properties"]["errorType"]["enum"])
    return found


def test_every_error_type_of_the_contract_is_known() -> None:
    assert set(ERROR_TYPES) == contract_error_types()
    assert len(ERROR_TYPES) == 20


def _status(error: type[SpotlerError]) -> int:
    if issubclass(error, SpotlerNotFoundError):
        return 404
    if issubclass(error, SpotlerAuthError):
        return 401
    if issubclass(error, SpotlerUnavailableError):
        return 500
    return 400


@pytest.mark.parametrize("error_type", sorted(ERROR_TYPES))
def test_each_error_type_is_its_typed_error_with_one_line_of_advice(error_type: str) -> None:
    expected = ERROR_TYPES[error_type]
    status = _status(expected.error)
    client, fake = make_client(
        {PATH: lambda _r: error_response(status, error_type, f"{KEY} {SECRET} said no")},
        max_attempts=2,
    )
    with pytest.raises(SpotlerError) as info:
        client.get_mailing_statistics("M1")
    error = info.value
    assert type(error) is expected.error
    assert error.error_type == error_type and error.status == status
    message = str(error)
    assert "\n" not in message
    assert error_type in message and expected.advice in message
    assert SECRET not in message  # the server echoed it: blanked
    retried = issubclass(expected.error, SpotlerUnavailableError)
    assert len(fake.requests) == (2 if retried else 1)


@pytest.mark.parametrize("error_type", ["AUTH_NOT_FOUND", "NOT_AUTHORIZED"])
def test_credential_errors_name_the_variables_never_the_values(error_type: str) -> None:
    client, _ = make_client({PATH: lambda _r: error_response(401, error_type, "denied")})
    with pytest.raises(SpotlerAuthError) as info:
        client.get_mailing_statistics("M1")
    message = str(info.value)
    assert "SPOTLER_CONSUMER_KEY" in message and "SPOTLER_CONSUMER_SECRET" in message
    assert KEY not in message and SECRET not in message


@pytest.mark.parametrize(
    ("status", "error"),
    [(404, SpotlerNotFoundError), (409, SpotlerRequestError), (403, SpotlerAuthError)],
)
def test_an_error_type_outside_the_contract_is_still_clear(
    status: int, error: type[SpotlerError]
) -> None:
    client, _ = make_client({PATH: lambda _r: error_response(status, "QUOTA_EXCEEDED", "later")})
    with pytest.raises(error) as info:
        client.get_mailing_statistics("M1")
    message = str(info.value)
    assert f"HTTP {status}" in message and "QUOTA_EXCEEDED" in message and "later" in message
    if status != 403:
        assert "not in Spotler's published contract" in message


def test_a_contact_unknown_to_spotler_is_an_empty_history_not_a_failed_run(
    tmp_path: Path,
) -> None:
    """The contact's history task ends with nothing staged and the contact listed as missing
    (its stored rows stay); the other contact's history is read as usual."""
    gone, known = "gone+old@example.nl", "still@example.nl"
    routes = {
        "/contact/gone%2Bold%40example.nl/mailings": lambda _r: error_response(
            404, "CONTACT_NOT_FOUND", f"contact {gone} not found"
        ),
        "/contact/still%40example.nl/mailings": lambda _r: json_response(
            {"paging": {}, "mailingHistories": []}
        ),
    }
    client, _ = make_client(routes)
    with pytest.raises(SpotlerContactNotFoundError) as info:
        list(client.iter_contact_mailing_history(gone))
    assert gone not in str(info.value) and contact_tag(gone) in str(info.value)
    assert "its history is empty" in str(info.value)

    history = HISTORIES[0]
    tasks = [
        FetchTask(
            table=history.table,
            pages=lambda c=c: history_pages(client, history, c, [date(2026, 12, 1)], None),
            item=c,
        )
        for c in (gone, known)
    ]
    with StagingArea(tmp_path) as stage:
        fetched = fetch_into(stage, tasks, max_workers=2, log=logging.getLogger(__name__))
    assert fetched.missing == {gone}
    assert fetched.rows == {history.table.name: 0}
