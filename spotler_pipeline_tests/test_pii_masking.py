"""Contact external ids (often e-mail addresses) never reach a log line, an error text, a
check's result or a run's config.

They travel in the paths of endpoints 6, 8, 10, 11 and 12, come back in servers' error
messages and can end up in a parse error; each time the client shows ``<contact:…>``
(:func:`contact_tag`) instead, while the request itself succeeds or fails as it would. Checks
show offending rows with the same tags, keyed by the warehouse's secret key: stable from run to
run, and not reversible with a list of the contacts' addresses.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import stat
import traceback
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dagster as dg
import httpx
import numpy as np
import pytest

from spotler_pipeline.client import (
    SpotlerClient,
    SpotlerError,
    SpotlerNotFoundError,
    SpotlerRequestError,
    SpotlerResponseError,
    SpotlerUnavailableError,
)
from spotler_pipeline.client.errors import contact_tag, mask_personal_data
from spotler_pipeline.defs.failures import MaskedError, failing_plainly
from spotler_pipeline.defs.resources import SpotlerResource, WarehouseResource
from spotler_pipeline.simulator import Fault, Simulator
from spotler_pipeline.simulator._time import ACCOUNT_TZ
from spotler_pipeline.warehouse.contact_key import KEY_FILE_ENV, contact_key_path
from spotler_pipeline.warehouse.lake import LakeSettings
from spotler_pipeline_tests.pipeline_harness import (
    MAILING_ASSETS,
    FullHarness,
    harness_with_all_groups,
    key,
)
from spotler_pipeline_tests.simulators import simulator_client, simulator_fixtures
from spotler_pipeline_tests.test_client_support import (
    error_response,
    json_response,
    make_client,
    rows_of,
)

NOW = datetime(2025, 5, 5, 12, 0, tzinfo=ACCOUNT_TZ)


shared, sim, api = simulator_fixtures(seed=9, scale=0.003, now=NOW, days=10)


def client_for(sim: Simulator, **overrides: Any) -> SpotlerClient:
    return simulator_client(sim, max_attempts=3, sleep=lambda _s: None, **overrides)


@pytest.fixture(scope="module")
def known(shared: Simulator) -> tuple[str, str]:
    """A mailing and one of its openers whose id is an address with a ``+`` (encoded as
    ``%2B`` and ``%40`` in paths) and who received at least two mailings."""
    with client_for(shared) as client:
        mailings = client.list_mailings(NOW - timedelta(days=10), NOW)
        mailing = next(m for m in mailings if m.type == "EMAIL").encrypted_id
        for opened in rows_of(client.mailing_open_batches(mailing)):
            address = opened["contact_external_id"] or ""
            if (
                "+" in address
                and "@" in address
                and len(list(client.iter_contact_mailing_history(address))) >= 2
            ):
                return mailing, address
    raise AssertionError("the simulator has no such contact")


def forms_of(address: str) -> list[str]:
    """The address as it could leak: as is, percent-encoded, and its local part."""
    return [address, quote(address, safe=""), address.split("@")[0]]


def assert_masked(text: str, address: str) -> None:
    for form in forms_of(address):
        assert form not in text, f"{form!r} leaked into: {text}"


def assert_error_masked(error: SpotlerError, address: str) -> None:
    for text in (str(error), repr(error), error.message, error.endpoint):
        assert_masked(text, address)
    assert contact_tag(address) in str(error)


def history_error(client: SpotlerClient, address: str, raises: type[SpotlerError]) -> SpotlerError:
    """The ``raises`` error reading ``address``'s mailing history gives, checked to be masked."""
    with pytest.raises(raises) as info:
        list(client.iter_contact_mailing_history(address))
    assert_error_masked(info.value, address)
    return info.value


ContactCall = Callable[[SpotlerClient, str, str], list[Any]]
CALLS: dict[str, ContactCall] = {
    "6-opens": lambda c, m, a: list(c.iter_mailing_contact_opens(m, a)),
    "8-clicks": lambda c, m, a: list(c.iter_mailing_contact_clicks(m, a)),
    "10-mailings": lambda c, m, a: list(c.iter_contact_mailing_history(a)),
    "11-forms": lambda c, m, a: list(c.iter_contact_form_history(a)),
    "12-campaign-mailings": lambda c, m, a: list(c.iter_contact_campaign_mailing_history(a)),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_retry_warnings_mask_the_contact_and_the_request_succeeds(
    sim: Simulator, known: tuple[str, str], call: ContactCall, caplog: pytest.LogCaptureFixture
) -> None:
    mailing, address = known
    with client_for(sim) as client:
        expected = call(client, mailing, address)
        sim.inject(Fault("server_error", path_pattern=re.escape(quote(address, safe="")), times=2))
        caplog.set_level(logging.WARNING, logger="spotler_pipeline.client")
        assert call(client, mailing, address) == expected
    assert len(caplog.records) == 2
    for record in caplog.records:
        assert_masked(record.getMessage(), address)
        assert contact_tag(address) in record.getMessage()


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_persistent_failure_masks_the_contact_in_logs_and_error(
    sim: Simulator, known: tuple[str, str], call: ContactCall, caplog: pytest.LogCaptureFixture
) -> None:
    mailing, address = known
    sim.inject(Fault("server_error", path_pattern=re.escape(quote(address, safe="")), times=None))
    caplog.set_level(logging.WARNING, logger="spotler_pipeline.client")
    with client_for(sim) as client, pytest.raises(SpotlerUnavailableError) as info:
        call(client, mailing, address)
    assert info.value.attempts == 3 and info.value.status == 503
    assert_error_masked(info.value, address)
    assert len(caplog.records) == 2
    for record in caplog.records:
        assert_masked(record.getMessage(), address)


def test_unknown_contact_echoed_by_the_server_is_masked(sim: Simulator) -> None:
    address = "nobody+news999999@example.nl"  # the simulator's 404 message repeats the id
    with client_for(sim) as client:
        error = history_error(client, address, SpotlerNotFoundError)
    assert error.error_type == "CONTACT_NOT_FOUND" and error.status == 404
    assert "not found" in str(error)


@pytest.mark.parametrize("kind", ["not_json", "truncated_body"])
def test_unusable_bodies_mask_the_contact(
    sim: Simulator, known: tuple[str, str], kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    _, address = known
    sim.inject(Fault(kind, path_pattern=re.escape(quote(address, safe="")), times=None))
    caplog.set_level(logging.WARNING, logger="spotler_pipeline.client")
    with client_for(sim) as client:
        history_error(client, address, SpotlerResponseError)
    assert caplog.records
    for record in caplog.records:
        assert_masked(record.getMessage(), address)


def test_repeated_page_description_masks_the_contact(sim: Simulator) -> None:
    """One contact's opens (endpoint 6) read a page at a time, the second page a repeat."""
    with client_for(sim) as client:
        mailings = client.list_mailings(NOW - timedelta(days=10), NOW)
        mailing, address = next(
            (m.encrypted_id, address)
            for m in mailings
            if m.type == "EMAIL"
            for address, n in Counter(
                o["contact_external_id"]
                for o in rows_of(client.mailing_open_batches(m.encrypted_id))
            ).items()
            if n >= 2 and address and "@" in address
        )
    sim.inject(Fault("repeat_page", path_pattern=re.escape(quote(address, safe="")), times=None))
    with client_for(sim, page_size=1) as client, pytest.raises(SpotlerResponseError) as info:
        list(client.iter_mailing_contact_opens(mailing, address))
    assert_error_masked(info.value, address)
    assert "repeated page 1 of /mailing/" in str(info.value)


def test_a_body_value_in_a_parse_error_is_masked() -> None:
    address = "jan.jansen@example.nl"
    path = f"/contact/{quote(address, safe='')}/mailings"
    bad = json_response({"mailingHistories": [{"opened": address}], "paging": {}})
    client, _ = make_client({path: [bad]})
    error = history_error(client, address, SpotlerResponseError)
    assert "expected a boolean" in str(error)


def test_a_non_address_id_is_masked_in_the_path_and_in_the_servers_message() -> None:
    crm_id = "K00000042"
    path = f"/mailing/M1/opens/{crm_id}"
    refused = error_response(400, "INVALID_PARAMS", f"contact {crm_id} is not in this mailing")
    client, _ = make_client({path: [refused]})
    with pytest.raises(SpotlerRequestError) as info:
        list(client.iter_mailing_contact_opens("M1", crm_id))
    assert crm_id not in str(info.value) and crm_id not in info.value.endpoint
    assert info.value.endpoint == f"/mailing/M1/opens/{contact_tag(crm_id)}"
    assert "is not in this mailing" in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/contact/a%2Bb%40x.nl/mailings", f"/contact/{contact_tag('a+b@x.nl')}/mailings"),
        ("/mailing/M1/clicks/K0042", f"/mailing/M1/clicks/{contact_tag('K0042')}"),
        ("contact 'a+b@x.nl' not found", f"contact '{contact_tag('a+b@x.nl')}' not found"),
        ("got a%2Bb%40x.nl", f"got {contact_tag('a+b@x.nl')}"),
        # OAuth's signature base string: the URL encoded once more
        (
            "GET&http%3A%2F%2Fh%2Fcontact%2Fa%252Bb%2540x.nl%2Fmailings&after%3D0",
            f"GET&http%3A%2F%2Fh%2Fcontact%2F{contact_tag('a+b@x.nl')}%2Fmailings&after%3D0",
        ),
        (
            "%2Fmailing%2FM1%2Fopens%2FK0042%2F",
            f"%2Fmailing%2FM1%2Fopens%2F{contact_tag('K0042')}%2F",
        ),
        # campaign subscription ids (endpoints 21, 23) and mailing ids are no personal data
        ("/campaign-mailing/C1/opens/S9", "/campaign-mailing/C1/opens/S9"),
        ("/mailing/M1/opens", "/mailing/M1/opens"),
    ],
    # fixed ids: a tag depends on the process's own key, and pytest-xdist's workers must
    # collect the same test names
    ids=["path", "crm-path", "message", "encoded", "oauth-base", "double-encoded", "sub", "plain"],
)
def test_masking_function(text: str, expected: str) -> None:
    assert mask_personal_data(text) == expected
    assert mask_personal_data(expected) == expected  # masking twice changes nothing


def test_httpx_mock_transport_request_with_an_address_succeeds_and_logs_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    address = "piet+x@voorbeeld.nl"
    path = f"/contact/{quote(address, safe='')}/forms"
    ok = json_response({"formHistories": [], "paging": {}})
    client, fake = make_client({path: [httpx.ReadTimeout("timed out"), ok]})
    caplog.set_level(logging.WARNING, logger="spotler_pipeline.client")
    assert list(client.iter_contact_form_history(address)) == []
    assert len(fake.requests) == 2
    (record,) = caplog.records
    assert_masked(record.getMessage(), address)


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_the_http_and_oauth_libraries_log_neither_contacts_nor_credentials(
    sim: Simulator, known: tuple[str, str], call: ContactCall, caplog: pytest.LogCaptureFixture
) -> None:
    """httpx logs each URL at INFO, httpcore (under httpx) each connection and request step and
    oauthlib the URL, key and base string at DEBUG; routed into a run's log (or with DEBUG on),
    none of them may show the contact or the credentials."""
    mailing, address = known
    caplog.set_level(logging.DEBUG)
    with client_for(sim) as client:
        call(client, mailing, address)
    libraries = {"httpx", "httpcore", "oauthlib"}
    library = [r for r in caplog.records if r.name.split(".")[0] in libraries]
    assert {r.name.split(".")[0] for r in library} == libraries
    text = "\n".join(r.getMessage() for r in library)
    assert "HTTP Request: GET" in text and "Signing: signature base string" in text
    assert contact_tag(address) in text
    assert_masked(text, address)
    for credential in (sim.consumer_key, sim.consumer_secret):
        for form in (credential, quote(credential, safe="")):
            assert form not in text, f"a credential leaked into: {text}"


def test_a_keyed_client_tags_with_its_key_in_library_logs_warnings_and_errors(
    sim: Simulator, known: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """The warehouse's key reaches every tag the client writes, also the httpx and oauthlib
    records masked by the logging filter."""
    _, address = known
    secret = b"k" * 32
    sim.inject(Fault("server_error", path_pattern=re.escape(quote(address, safe="")), times=None))
    caplog.set_level(logging.DEBUG)
    with client_for(sim, contact_key=secret) as client, pytest.raises(SpotlerError) as info:
        list(client.iter_contact_mailing_history(address))
    keyed, unkeyed = contact_tag(address, secret), contact_tag(address)
    text = "\n".join(r.getMessage() for r in caplog.records) + f"\n{info.value}"
    assert_masked(text, address)
    assert keyed in text and unkeyed not in text
    httpx_text = "\n".join(r.getMessage() for r in caplog.records if r.name == "httpx")
    assert keyed in httpx_text and keyed in info.value.endpoint


# -- the warehouse's key ----------------------------------------------------------------------


def test_the_key_lives_beside_the_warehouse_readable_by_its_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "data" / "spotler.duckdb"
    first = WarehouseResource(database=str(database)).contact_key()
    key_file = tmp_path / "data" / "spotler.duckdb.contact-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # the same warehouse, another run: the same key, so the same tags
    assert WarehouseResource(database=str(database)).contact_key() == first
    other = WarehouseResource(database=str(tmp_path / "other" / "spotler.duckdb")).contact_key()
    assert other != first and len(first) == 32
    key_file.write_text("not a key\n")
    with pytest.raises(dg.Failure, match="is not a contact key"):
        WarehouseResource(database=str(database)).contact_key()


@pytest.mark.parametrize(
    ("data_path", "key_file", "expected"),
    [
        ("/lake/files/", None, "/lake/files.contact-key"),
        ("s3://bucket/lake", "/secrets/spotler.key", "/secrets/spotler.key"),
        ("s3://bucket/lake", None, KEY_FILE_ENV),
        (None, None, KEY_FILE_ENV),
    ],
)
def test_a_lakes_key_is_beside_its_local_files_or_where_configured(
    data_path: str | None, key_file: str | None, expected: str
) -> None:
    lake = LakeSettings("postgres:dbname=lake", data_path)
    if expected == KEY_FILE_ENV:
        with pytest.raises(ValueError, match=KEY_FILE_ENV):
            contact_key_path("data/spotler.duckdb", lake, key_file)
    else:
        assert contact_key_path("data/spotler.duckdb", lake, key_file) == Path(expected)


# -- checks, metadata and run config of a real run --------------------------------------------


def failing_run(
    simulator: Simulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> tuple[FullHarness, list[str], str]:
    """A run of the contact histories for contacts listed in a file, whose opens were lost
    from the warehouse: its reconciliation check fails (WARN). Returns the harness, the
    contacts and every text the run left: its event log and run record, serialized, and every
    Python log record of the process meanwhile (DEBUG and up, libraries included)."""
    h = harness_with_all_groups(simulator, tmp_path / "warehouse" / "spotler.duckdb")
    day = h.busiest_day()
    assert h.materialize(MAILING_ASSETS, day=day).success
    contacts = [
        r[0]
        for r in h.query(
            "SELECT DISTINCT contact_external_id FROM spotler.mailing_opens "
            "WHERE contact_external_id IS NOT NULL ORDER BY 1 LIMIT 4"
        )
    ]
    h.execute(
        "DELETE FROM spotler.mailing_opens WHERE contact_external_id IN (SELECT unnest(?))",
        [contacts],
    )
    caplog.set_level(logging.DEBUG)
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            h.assets_for(["contact_mailing_history"]),
            selection=[key("contact_mailing_history")],
            resources=h.resources(),
            partition_key=day.isoformat(),
            run_config=h.contacts_run_config(contacts),
            instance=instance,
        )
        assert result.success
        (evaluation,) = [
            e
            for e in result.get_asset_check_evaluations()
            if e.check_name == "card_matches_interactions"
        ]
        assert not evaluation.passed
        assert evaluation.severity == dg.AssetCheckSeverity.WARN
        run = instance.get_run_by_id(result.run_id)
        assert run is not None
        texts = [dg.serialize_value(e) for e in instance.all_logs(result.run_id)]
        texts.append(dg.serialize_value(run))
    texts.extend(r.getMessage() for r in caplog.records)
    return h, contacts, "\n".join(texts)


def hex_tags(text: str) -> set[str]:
    """The hex digits of every ``<contact:…>`` tag in ``text``."""
    return set(re.findall(r"<contact:([0-9a-f]+)>", text))


def test_a_failing_check_its_run_config_and_logs_name_no_contact_and_resist_a_dictionary(
    simulator: Simulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    h, contacts, text = failing_run(simulator, tmp_path, caplog)
    everyone = [
        r[0]
        for r in h.query(
            "SELECT DISTINCT contact_external_id FROM spotler.mailing_recipients "
            "WHERE contact_external_id IS NOT NULL"
        )
    ]
    assert set(contacts) <= set(everyone)
    for contact in everyone:
        once = quote(contact, safe="")
        for form in (contact, once, quote(once, safe="")):
            assert form not in text, f"{contact} leaked as {form}"
    assert "contacts.txt" in text  # what the run config names instead of the ids
    # the check shows the contacts it found by their tags under the warehouse's key
    warehouse_key = h.warehouse().contact_key()
    shown = hex_tags(text)
    assert {contact_tag(c, warehouse_key)[9:-1] for c in contacts} <= shown

    # The dictionary attack: every contact id of the account, hashed the ways open to someone
    # without the warehouse's key (SHA-256, MD5, HMAC with no, a guessed or another key),
    # matches no tag of the run; with the key, every tag is someone's.
    account = h.sim.account.contacts
    addresses = [a for a in account.external_ids(np.arange(account.size)) if a]
    digits = len(next(iter(shown)))

    def guesses(address: str) -> set[str]:
        raw = address.encode()
        digests = [hashlib.sha256(raw).hexdigest(), hashlib.md5(raw).hexdigest()]
        digests += [hmac.new(k, raw, hashlib.sha256).hexdigest() for k in (b"", b"spotler")]
        digests.append(contact_tag(address)[9:-1])  # this process's own key
        return {d[:n] for d in digests for n in (8, digits)}

    assert not set().union(*(guesses(a) for a in addresses)) & shown
    assert shown <= {contact_tag(a, warehouse_key)[9:-1] for a in addresses}


def _raises_with_an_address(address: str) -> None:
    try:
        {}[address]
    except KeyError as exc:
        raise ValueError(f"no row for {address}") from exc


def test_an_unexpected_error_naming_a_contact_is_raised_masked_with_its_stack() -> None:
    key = b"k" * 32
    with pytest.raises(MaskedError) as raised, failing_plainly(key):
        _raises_with_an_address("jan.jansen@example.com")
    error = raised.value
    assert str(error) == f"ValueError: no row for {contact_tag('jan.jansen@example.com', key)}"
    assert error.__suppress_context__ and error.__cause__ is None  # the KeyError held it too
    frames = [frame.name for frame in traceback.extract_tb(error.__traceback__)]
    assert "_raises_with_an_address" in frames  # the bug's own stack is kept
    # Nothing personal: raised unchanged.
    with pytest.raises(ValueError, match="no row for order 17"), failing_plainly(key):
        raise ValueError("no row for order 17")


def test_a_step_failing_on_a_contact_leaves_no_address_in_the_event_log(tmp_path: Path) -> None:
    address = "piet.pieters@example.com"

    @dg.asset
    def reads_a_contact(spotler: SpotlerResource) -> None:
        with spotler.get_client(b"k" * 32):
            _raises_with_an_address(address)

    spotler = SpotlerResource(consumer_key="key", consumer_secret="secret")
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = dg.materialize(
            [reads_a_contact],
            resources={"spotler": spotler},
            instance=instance,
            raise_on_error=False,
        )
        assert not result.success
        stored = [
            str(record.event_log_entry.to_json())
            for record in instance.get_records_for_run(result.run_id).records
        ]
    failure = next(text for text in stored if "STEP_FAILURE" in text)
    assert contact_tag(address, b"k" * 32) in failure and "_raises_with_an_address" in failure
    assert not any(address in text for text in stored)
