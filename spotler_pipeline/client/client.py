"""``SpotlerClient``: one method per Spotler reporting endpoint (1-24 of the API notes)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from functools import partial
from types import TracebackType
from typing import Any, Self, TypeVar
from zoneinfo import ZoneInfo

import httpx
import pyarrow as pa

from spotler_pipeline.client import endpoints as ep
from spotler_pipeline.client.columnar import ArrowPageDecoder
from spotler_pipeline.client.endpoints import Endpoint
from spotler_pipeline.client.models import (
    Campaign,
    CampaignMailing,
    CampaignMailingDetails,
    CampaignMailingHistory,
    Click,
    Form,
    FormHistory,
    FormResult,
    MailingDetails,
    MailingHistory,
    MailingStatistics,
    MailingSummary,
    Open,
    SubscriptionClick,
    SubscriptionOpen,
    contact_click,
    contact_open,
    decode,
)
from spotler_pipeline.client.paging import (
    Page,
    decode_json,
    iter_pages,
    json_list,
    json_object,
    json_page,
)
from spotler_pipeline.client.settings import ClientSettings
from spotler_pipeline.client.timestamps import format_api_datetime, format_date_param
from spotler_pipeline.client.transport import BodyError, Requester

__all__ = ["SpotlerClient"]

T = TypeVar("T")
Params = dict[str, str | int]


class SpotlerClient:
    """A thread-safe client for one Spotler account.

    Unpaged endpoints return typed records. The bulk interaction endpoints (4, 5, 7, 9, 19,
    20, 22, 24) stream one Arrow ``RecordBatch`` per API page (``*_batches``); the other paged
    endpoints (a contact's history, one contact's or one subscription's interactions)
    stream typed records (``iter_*``).
    Date arguments are sent in the account's zone (naive values are taken to be in it).
    """

    def __init__(
        self,
        settings: ClientSettings,
        transport: httpx.BaseTransport | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._zone = ZoneInfo(settings.timezone)
        self._requester = Requester(settings, transport, sleep=sleep, clock=clock)

    def __repr__(self) -> str:
        return f"SpotlerClient(base_url={self._settings.base_url!r})"

    @property
    def settings(self) -> ClientSettings:
        return self._settings

    @property
    def timezone(self) -> ZoneInfo:
        """The account's wall-clock zone (date parameters, naive timestamps)."""
        return self._zone

    @property
    def requester(self) -> Requester:
        """The signed, retrying transport every call of this client goes through (the
        follow-up writes of :mod:`~spotler_pipeline.client.actions` use it too)."""
        return self._requester

    @property
    def request_count(self) -> int:
        """HTTP requests actually sent so far, retries included."""
        return self._requester.request_count

    def close(self) -> None:
        self._requester.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # Mailings -------------------------------------------------------------------------

    def list_mailings(self, from_date: datetime, to_date: datetime) -> list[MailingSummary]:
        """(1) Mailings sent between ``from_date`` and ``to_date``."""
        return self._list(
            ep.MAILINGS,
            {},
            self._range(from_date, to_date),
            self._decoder(MailingSummary),
        )

    def get_mailing(self, mailing_id: str) -> MailingDetails:
        """(2) A mailing's static details: sender, target group, message, links."""
        return self._object(
            ep.MAILING,
            {"mailing_id": mailing_id},
            None,
            self._decoder(MailingDetails),
        )

    def get_mailing_statistics(self, mailing_id: str) -> MailingStatistics:
        """(3) The mailing's statistics as they stand now."""
        return self._object(
            ep.MAILING_STATISTICS,
            {"mailing_id": mailing_id},
            None,
            self._decoder(MailingStatistics),
        )

    def iter_mailing_contact_opens(
        self, mailing_id: str, external_contact_id: str
    ) -> Iterator[Open]:
        """(6) One contact's opens of the mailing (the rows carry no contact: each record's
        ``contact`` is the one asked for, by its external id)."""
        ids = {"mailing_id": mailing_id, "contact_id": external_contact_id}
        build = partial(contact_open, zone=self._zone, external_contact_id=external_contact_id)
        return self._records(ep.MAILING_CONTACT_OPENS, ids, None, build=build)

    def iter_mailing_contact_clicks(
        self, mailing_id: str, external_contact_id: str
    ) -> Iterator[Click]:
        """(8) One contact's clicks in the mailing (``contact`` as in (6))."""
        ids = {"mailing_id": mailing_id, "contact_id": external_contact_id}
        build = partial(contact_click, zone=self._zone, external_contact_id=external_contact_id)
        return self._records(ep.MAILING_CONTACT_CLICKS, ids, None, build=build)

    def mailing_recipient_batches(self, mailing_id: str) -> Iterator[pa.RecordBatch]:
        """(4) as Arrow batches of :data:`RECIPIENT_SCHEMA`, one per page."""
        return self._batches(ep.MAILING_RECIPIENTS, {"mailing_id": mailing_id})

    def mailing_open_batches(self, mailing_id: str) -> Iterator[pa.RecordBatch]:
        """(5) as Arrow batches of :data:`OPEN_SCHEMA`, one per page."""
        return self._batches(ep.MAILING_OPENS, {"mailing_id": mailing_id})

    def mailing_click_batches(self, mailing_id: str) -> Iterator[pa.RecordBatch]:
        """(7) as Arrow batches of :data:`CLICK_SCHEMA`, one per page."""
        return self._batches(ep.MAILING_CLICKS, {"mailing_id": mailing_id})

    def mailing_bounce_batches(self, mailing_id: str) -> Iterator[pa.RecordBatch]:
        """(9) as Arrow batches of :data:`BOUNCE_SCHEMA`, one per page."""
        return self._batches(ep.MAILING_BOUNCES, {"mailing_id": mailing_id})

    # A contact's history ----------------------------------------------------------------

    def iter_contact_mailing_history(self, external_contact_id: str) -> Iterator[MailingHistory]:
        """(10) The mailings one contact received, with opened / clicked / bounce."""
        ids = {"contact_id": external_contact_id}
        return self._records(ep.CONTACT_MAILINGS, ids, None, MailingHistory)

    def iter_contact_form_history(self, external_contact_id: str) -> Iterator[FormHistory]:
        """(11) The forms one contact submitted."""
        return self._records(
            ep.CONTACT_FORMS, {"contact_id": external_contact_id}, None, FormHistory
        )

    def iter_contact_campaign_mailing_history(
        self, external_contact_id: str
    ) -> Iterator[CampaignMailingHistory]:
        """(12) The campaign messages one contact received, per campaign subscription."""
        ids = {"contact_id": external_contact_id}
        return self._records(ep.CONTACT_CAMPAIGN_MAILINGS, ids, None, CampaignMailingHistory)

    # Forms ------------------------------------------------------------------------------

    def list_forms(
        self, form_sub_type: str | None = None, form_state: str | None = None
    ) -> list[Form]:
        """(13) Forms, optionally filtered by sub-type and state."""
        params: Params = {}
        if form_sub_type is not None:
            params["formSubType"] = form_sub_type
        if form_state is not None:
            params["formState"] = form_state
        return self._list(ep.FORMS, {}, params, self._decoder(Form))

    def get_form_result(self, form_id: str, form_result_id: str) -> FormResult:
        """(14) One submission of a form."""
        ids = {"form_id": form_id, "form_result_id": form_result_id}
        return self._object(ep.FORM_RESULT, ids, None, self._decoder(FormResult))

    def list_form_results(
        self,
        form_id: str,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        completed: bool | None = None,
    ) -> list[FormResult]:
        """(15) All submissions of a form, optionally in a date range / by completion."""
        params: Params = {}
        if completed is not None:
            params["completed"] = "true" if completed else "false"
        if start_date is not None:
            params["startDate"] = format_date_param(start_date, self._zone)
        if end_date is not None:
            params["endDate"] = format_date_param(end_date, self._zone)
        return self._list(
            ep.FORM_RESULTS,
            {"form_id": form_id},
            params,
            self._decoder(FormResult),
        )

    # Campaigns --------------------------------------------------------------------------

    def list_campaigns(self) -> list[Campaign]:
        """(16) Every campaign with its triggers."""
        return self._list(ep.CAMPAIGNS, {}, None, self._decoder(Campaign))

    def list_campaign_mailings(self, campaign_id: str) -> list[CampaignMailing]:
        """(17) The message steps of a campaign."""
        return self._list(
            ep.CAMPAIGN_MAILINGS, {"campaign_id": campaign_id}, None, self._decoder(CampaignMailing)
        )

    def get_campaign_mailing(self, campaign_mailing_id: str) -> CampaignMailingDetails:
        """(18) A campaign message with its content and links."""
        ids = {"campaign_mailing_id": campaign_mailing_id}
        return self._object(ep.CAMPAIGN_MAILING, ids, None, self._decoder(CampaignMailingDetails))

    def iter_campaign_mailing_subscription_opens(
        self, campaign_mailing_id: str, subscription_id: str
    ) -> Iterator[SubscriptionOpen]:
        """(21) Opens of a campaign message within one campaign subscription."""
        ids = {"campaign_mailing_id": campaign_mailing_id, "subscription_id": subscription_id}
        build = partial(
            SubscriptionOpen.from_json, zone=self._zone, subscription_id=subscription_id
        )
        return self._records(ep.CAMPAIGN_MAILING_SUBSCRIPTION_OPENS, ids, None, build=build)

    def iter_campaign_mailing_subscription_clicks(
        self, campaign_mailing_id: str, subscription_id: str
    ) -> Iterator[SubscriptionClick]:
        """(23) Clicks in a campaign message within one campaign subscription."""
        ids = {"campaign_mailing_id": campaign_mailing_id, "subscription_id": subscription_id}
        build = partial(
            SubscriptionClick.from_json, zone=self._zone, subscription_id=subscription_id
        )
        return self._records(ep.CAMPAIGN_MAILING_SUBSCRIPTION_CLICKS, ids, None, build=build)

    def campaign_mailing_recipient_batches(
        self, campaign_mailing_id: str, from_date: datetime, to_date: datetime
    ) -> Iterator[pa.RecordBatch]:
        """(19) as Arrow batches of :data:`CAMPAIGN_RECIPIENT_SCHEMA`, one per page."""
        ids, window = self._step(campaign_mailing_id, from_date, to_date)
        return self._batches(ep.CAMPAIGN_MAILING_RECIPIENTS, ids, window)

    def campaign_mailing_open_batches(
        self, campaign_mailing_id: str, from_date: datetime, to_date: datetime
    ) -> Iterator[pa.RecordBatch]:
        """(20) as Arrow batches of :data:`CAMPAIGN_OPEN_SCHEMA`, one per page."""
        ids, window = self._step(campaign_mailing_id, from_date, to_date)
        return self._batches(ep.CAMPAIGN_MAILING_OPENS, ids, window)

    def campaign_mailing_click_batches(
        self, campaign_mailing_id: str, from_date: datetime, to_date: datetime
    ) -> Iterator[pa.RecordBatch]:
        """(22) as Arrow batches of :data:`CAMPAIGN_CLICK_SCHEMA`, one per page."""
        ids, window = self._step(campaign_mailing_id, from_date, to_date)
        return self._batches(ep.CAMPAIGN_MAILING_CLICKS, ids, window)

    def campaign_mailing_bounce_batches(
        self, campaign_mailing_id: str, from_date: datetime, to_date: datetime
    ) -> Iterator[pa.RecordBatch]:
        """(24) as Arrow batches of :data:`CAMPAIGN_BOUNCE_SCHEMA`, one per page."""
        ids, window = self._step(campaign_mailing_id, from_date, to_date)
        return self._batches(ep.CAMPAIGN_MAILING_BOUNCES, ids, window)

    # Plumbing ---------------------------------------------------------------------------

    def _range(self, from_date: datetime, to_date: datetime) -> Params:
        return {
            "fromDate": format_api_datetime(from_date, self._zone),
            "toDate": format_api_datetime(to_date, self._zone),
        }

    def _step(
        self, campaign_mailing_id: str, from_date: datetime, to_date: datetime
    ) -> tuple[dict[str, str], Params]:
        """The ids and date range of a campaign message's interactions (19, 20, 22, 24)."""
        return {"campaign_mailing_id": campaign_mailing_id}, self._range(from_date, to_date)

    def _decoder(self, record: type[T]) -> Callable[[Any], T]:
        """Reads one JSON object of Spotler's as ``record``, its timestamps in the account's
        zone."""
        return partial(decode, record, zone=self._zone)

    def _object(
        self,
        endpoint: Endpoint,
        ids: Mapping[str, str],
        params: Params | None,
        build: Callable[[Any], T],
    ) -> T:
        return self._requester.get(
            endpoint.path_for(**ids),
            params,
            lambda body: _building(build, json_object(decode_json(body))),
        )

    def _list(
        self,
        endpoint: Endpoint,
        ids: Mapping[str, str],
        params: Params | None,
        build: Callable[[Any], T],
    ) -> list[T]:
        def parse(body: bytes) -> list[T]:
            return [_building(build, item) for item in json_list(decode_json(body))]

        return self._requester.get(endpoint.path_for(**ids), params or None, parse)

    def _records(
        self,
        endpoint: Endpoint,
        ids: Mapping[str, str],
        params: Params | None,
        record: type[Any] | None = None,
        *,
        build: Callable[[Any], Any] | None = None,
    ) -> Iterator[Any]:
        """The records of a paged endpoint: each row decoded as ``record``
        (:func:`~spotler_pipeline.client.models.decode`), or ``build(row)`` when given."""
        array_field = endpoint.array_field
        assert array_field is not None
        if build is None:
            assert record is not None
            build = self._decoder(record)

        def decode(body: bytes) -> Page[list[Any]]:
            page = json_page(decode_json(body), array_field)
            items = [_building(build, row) for row in page.rows]
            return Page(items, page.count, page.has_next, page.complete)

        for page in self._pages(endpoint, ids, params, decode, _same_list):
            yield from page.rows

    def _batches(
        self, endpoint: Endpoint, ids: Mapping[str, str], params: Params | None = None
    ) -> Iterator[pa.RecordBatch]:
        assert endpoint.array_field is not None and endpoint.layout is not None
        decoder = ArrowPageDecoder(
            endpoint.layout, endpoint.array_field, self._settings.timezone, self._zone
        )
        for page in self._pages(endpoint, ids, params, decoder, _same_batch):
            yield page.rows

    def _pages(
        self,
        endpoint: Endpoint,
        ids: Mapping[str, str],
        params: Params | None,
        decode: Callable[[bytes], Page[T]],
        same_rows: Callable[[T, T], bool],
    ) -> Iterator[Page[T]]:
        """Pages of a paged endpoint; ``decode`` and the repeat check run inside the retry
        loop, so a truncated or repeated page is fetched again before giving up."""
        path = endpoint.path_for(**ids)
        page_size = self._settings.page_size

        def fetch(after: int, check: Callable[[Page[T]], None]) -> Page[T]:
            def parse(body: bytes) -> Page[T]:
                page = decode(body)
                check(page)
                return page

            query: Params = {**(params or {}), "after": after}
            if endpoint.sized:
                query["pageSize"] = page_size
            return self._requester.get(path, query, parse)

        return iter_pages(fetch, same_rows, path)


def _building(build: Callable[[Any], T], data: Any) -> T:
    """``build(data)``, reporting a value of the wrong kind as an unusable body."""
    try:
        return build(data)
    except (TypeError, ValueError, KeyError) as exc:
        raise BodyError(f"unexpected JSON shape: {exc}") from None


def _same_list(a: list[Any], b: list[Any]) -> bool:
    return a == b


def _same_batch(a: pa.RecordBatch, b: pa.RecordBatch) -> bool:
    return a.equals(b)
