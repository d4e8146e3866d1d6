"""Bad input gets one clear line, not a traceback to read: settings, partition keys, an
unreachable API, an excessive ``Retry-After``; and credentials stay ``dg.EnvVar``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta

import dagster as dg
import httpx
import pytest

from spotler_pipeline.client import ClientSettings, SpotlerClient, SpotlerUnavailableError
from spotler_pipeline.defs.config import DeploymentSettings
from spotler_pipeline_tests.test_client_support import (
    KEY,
    SECRET,
    error_response,
    json_response,
    make_client,
)

PATH = "/mailing/M1/statistics"
OK = json_response({"sentCount": 10})


def one_line(text: str) -> str:
    assert "\n" not in text.strip(), text
    return text


# Settings read when the code location loads ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SPOTLER_TIMEZONE", "Europe/Amsterdm"),
        ("SPOTLER_TIMEZONE", "Europe"),
        ("SPOTLER_TIMEZONE", "/etc/passwd"),
        ("SPOTLER_PARTITIONS_START", "2025/01/01"),
        ("SPOTLER_PARTITIONS_START", "20250101"),
        ("SPOTLER_PARTITIONS_START", "2025-13-01"),
        ("SPOTLER_PARTITIONS_START", "last year"),
        ("SPOTLER_INTERACTION_REFRESH_DAYS", "0"),
        ("SPOTLER_CAMPAIGN_REFRESH_DAYS", "three"),
        ("SPOTLER_SNAPSHOT_LOOKBACK_DAYS", "-5"),
        ("SPOTLER_SNAPSHOT_LOOKBACK_DAYS", "1.5"),
    ],
)
def test_bad_setting_is_one_line_naming_variable_and_value(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError) as info:
        DeploymentSettings.from_env()
    message = one_line(str(info.value))
    assert name in message and repr(value) in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_good_settings_and_blank_ones_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPOTLER_TIMEZONE", " America/New_York ")
    monkeypatch.setenv("SPOTLER_PARTITIONS_START", "")
    settings = DeploymentSettings.from_env()
    assert settings.timezone == "America/New_York"
    assert settings.partitions_start == "2025-01-01"


def test_loading_the_code_location_with_a_bad_time_zone_ends_in_that_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOTLER_")}
    env["SPOTLER_TIMEZONE"] = "Europe/Amsterdm"
    out = subprocess.run(
        # what `dagster dev -m spotler_pipeline` / dg load: the definitions (importing the
        # package alone builds nothing since the client must import without Dagster)
        [sys.executable, "-c", "from spotler_pipeline import defs"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.endswith(
        "SettingsError: SPOTLER_TIMEZONE='Europe/Amsterdm' is not a known time zone: use an "
        "IANA name such as 'Europe/Amsterdam'"
    )
    assert "ZoneInfoNotFoundError" not in out.stderr  # zoneinfo's traceback is not chained


# Partition keys outside the definition ---------------------------------------------------


def _guarded_asset() -> dg.AssetsDefinition:
    from spotler_pipeline.defs.partitions import check_partition_range, daily_partitions

    # ``context`` unannotated: Dagster cannot resolve a string annotation on a nested function.
    @dg.asset(partitions_def=daily_partitions("2025-01-01", "Europe/Amsterdam"))
    def guarded(context) -> None:
        check_partition_range(context)

    return guarded


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (
            {"dagster/partition": "2019-01-01"},
            "Partition 2019-01-01 is out of range: partitions are the days 2025-01-01 to ",
        ),
        (
            {
                "dagster/asset_partition_range_start": "2024-12-30",
                "dagster/asset_partition_range_end": "2025-01-02",
            },
            "Partition 2024-12-30...2025-01-02 is out of range",
        ),
        ({"dagster/partition": "2999-01-01"}, "later days do not exist yet"),
    ],
    ids=["before-start", "range-across-start", "future"],
)
def test_a_run_tagged_with_a_day_outside_the_partitions_fails_in_one_line(
    tags: dict[str, str], expected: str
) -> None:
    # Dagster refuses such a key given as --partition / partition_key (see defs/partitions.py)
    # but starts a run that merely carries it as a tag: the asset's guard says what is wrong.
    with pytest.raises(dg.Failure) as info:
        dg.materialize([_guarded_asset()], tags=tags)
    message = one_line(info.value.description or "")
    assert expected in message
    assert "SPOTLER_PARTITIONS_START" in message


def test_a_run_for_an_existing_day_passes_the_guard() -> None:
    result = dg.materialize([_guarded_asset()], tags={"dagster/partition": "2025-03-03"})
    assert result.success


# An unreachable API ---------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_names_the_host_in_one_line() -> None:
    port = _closed_port()
    settings = ClientSettings(
        KEY, SECRET, base_url=f"http://127.0.0.1:{port}/integrationservice", max_attempts=2
    )
    sleeps: list[float] = []
    with (
        SpotlerClient(settings, sleep=sleeps.append) as client,
        pytest.raises(SpotlerUnavailableError) as info,
    ):
        client.get_mailing_statistics("M1")
    message = one_line(str(info.value))
    assert message.startswith(f"Cannot reach Spotler at 127.0.0.1:{port} (SPOTLER_BASE_URL)")
    assert "refused" in message.lower() and "2 attempts" in message
    assert "integrationservice" not in message  # the host, not the URL
    assert info.value.__context__ is None and len(sleeps) == 1


def test_unknown_host_names_the_host_and_no_more_of_the_url() -> None:
    def dns_failure(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno -2] Name or service not known", request=request)

    client = SpotlerClient(
        ClientSettings(
            KEY,
            SECRET,
            base_url="https://user:pa55word@spotler.invalid:8443/integrationservice-1.1.0",
            max_attempts=3,
        ),
        httpx.MockTransport(dns_failure),
        sleep=lambda _s: None,
    )
    with pytest.raises(SpotlerUnavailableError) as info:
        client.get_mailing_statistics("M1")
    message = one_line(str(info.value))
    assert message.startswith("Cannot reach Spotler at spotler.invalid:8443 (SPOTLER_BASE_URL)")
    assert "Name or service not known" in message and "[Errno" not in message
    for hidden in ("pa55word", "user:", "https://", "OAuth", SECRET):
        assert hidden not in message
    assert info.value.attempts == 3


# Retry-After ----------------------------------------------------------------------------


def test_retry_after_up_to_the_maximum_is_honoured_in_full() -> None:
    sleeps: list[float] = []
    limited = error_response(429, "RATE_LIMIT", **{"Retry-After": "120"})
    client, fake = make_client({PATH: [limited, OK]}, sleeps=sleeps)
    assert client.get_mailing_statistics("M1").sent_count == 10
    assert sleeps == [120.0] and len(fake.requests) == 2


@pytest.mark.parametrize(
    ("asked", "maximum", "settings"),
    [("3600", 300, {}), ("20", 10, {"max_retry_after": 10.0})],
    ids=["default-maximum", "configured-maximum"],
)
def test_retry_after_beyond_the_maximum_fails_at_once_saying_so(
    asked: str, maximum: int, settings: dict[str, float]
) -> None:
    sleeps: list[float] = []
    limited = error_response(429, "RATE_LIMIT", **{"Retry-After": asked})
    client, fake = make_client({PATH: [limited, OK]}, sleeps=sleeps, **settings)
    with pytest.raises(SpotlerUnavailableError) as info:
        client.get_mailing_statistics("M1")
    message = one_line(str(info.value))
    assert f"asked to retry after {asked} s" in message
    assert f"configured maximum of {maximum} s" in message
    assert info.value.status == 429 and PATH in message
    assert sleeps == [] and len(fake.requests) == 1


def test_retry_after_as_an_http_date_beyond_the_maximum_fails_too() -> None:
    from datetime import UTC, datetime
    from email.utils import format_datetime

    when = format_datetime(datetime.now(UTC) + timedelta(hours=2), usegmt=True)
    limited = error_response(503, "BACKEND_EXCEPTION", **{"Retry-After": when})
    client, fake = make_client({PATH: [limited, OK]})
    with pytest.raises(SpotlerUnavailableError, match="configured maximum of 300 s"):
        client.get_mailing_statistics("M1")
    assert len(fake.requests) == 1


def test_the_resource_passes_its_maximum_to_the_client() -> None:
    from spotler_pipeline.defs.resources import SpotlerResource

    resource = SpotlerResource(consumer_key=KEY, consumer_secret=SECRET)
    assert resource.client_settings().max_retry_after == 300.0
    resource = SpotlerResource(consumer_key=KEY, consumer_secret=SECRET, max_retry_after_seconds=42)
    assert resource.client_settings().max_retry_after == 42.0


# Credentials stay EnvVars ----------------------------------------------------------------


@pytest.mark.parametrize("set_at_load", [True, False], ids=["set", "unset"])
def test_credentials_in_the_loaded_definitions_are_env_vars(
    monkeypatch: pytest.MonkeyPatch, set_at_load: bool
) -> None:
    from spotler_pipeline.definitions import build_definitions

    for name in ("SPOTLER_CONSUMER_KEY", "SPOTLER_CONSUMER_SECRET"):
        if set_at_load:
            monkeypatch.setenv(name, f"value-of-{name}")
        else:
            monkeypatch.delenv(name, raising=False)
    resource = build_definitions().resources["spotler"]
    for field, name in (
        ("consumer_key", "SPOTLER_CONSUMER_KEY"),
        ("consumer_secret", "SPOTLER_CONSUMER_SECRET"),
    ):
        value = getattr(resource, field)
        assert isinstance(value, dg.EnvVar), (field, value)
        assert value.env_var_name == name
        assert "value-of" not in value
