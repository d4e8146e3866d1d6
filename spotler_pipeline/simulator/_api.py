"""The REST endpoints of the published contract, as pure request -> response functions."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

import numpy as np
import orjson

from spotler_pipeline.simulator._account import Account, Mailing
from spotler_pipeline.simulator._contract import MAX_PAGE_SIZE, ContractViolation, operation
from spotler_pipeline.simulator._rows import RowSet
from spotler_pipeline.simulator._time import parse_api_date, parse_date_param

PREFIX = "/integrationservice-1.1.0"
DEFAULT_PAGE_SIZE = 1000
HISTORY_PAGE_SIZE = 50  # endpoints 10 and 12: "Default pagesize is 50 (Cannot be modified)"
_DIGITS = re.compile(r"\d{1,18}")
FORM_SUB_TYPES = ("normal", "subscribe", "unSubscribe", "editProfile")
FORM_STATES = ("draft", "proof", "final")


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message

    def response(self) -> Response:
        body = orjson.dumps({"errorType": self.error_type, "message": self.message})
        return Response(self.status, body)


def _bad(message: str) -> ApiError:
    return ApiError(400, "INVALID_PARAMS", message)


@dataclass
class Request:
    """An authenticated GET, split into what the endpoints need."""

    host: str
    raw_path: str
    raw_query: str
    now: int
    params: dict[str, str] = field(default_factory=dict)
    #: asked once per paged answer: the most records it may hold (a ``short_pages`` fault)
    page_cap: Callable[[], int | None] | None = None
    #: asked once per paged answer with its ``after``: (records inserted ahead of the
    #: reader, page cap) under a ``shifted_listing`` fault
    listing_shift: Callable[[int], tuple[int, int | None]] | None = None

    @classmethod
    def parse(cls, host: str, raw_path: str, raw_query: str, now: int) -> Request:
        try:
            pairs = parse_qsl(raw_query, keep_blank_values=True, errors="strict")
        except (ValueError, UnicodeDecodeError):
            raise _bad("malformed query string") from None
        params: dict[str, str] = {}
        for key, value in pairs:
            if key.startswith("oauth_"):
                continue
            if key in params:
                raise _bad(f"parameter {key} given more than once")
            params[key] = value
        return cls(host, raw_path, raw_query, now, params)

    def integer(self, name: str, default: int) -> int:
        value = self.params.get(name)
        if value is None:
            return default
        if not _DIGITS.fullmatch(value):
            raise _bad(f"{name} must be a non-negative integer, got {value!r}")
        return int(value)

    def paging(self, fixed_size: int | None = None) -> tuple[int, int]:
        """``(after, page size)``; ``fixed_size`` for an endpoint whose page size cannot be
        chosen (it takes ``after`` only)."""
        after = self.integer("after", 0)
        size = fixed_size or self.integer("pageSize", DEFAULT_PAGE_SIZE)
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise _bad(f"pageSize must be between 1 and {MAX_PAGE_SIZE}, got {size}")
        return after, size

    def date(self, name: str, required: bool = False, date_param: bool = False) -> int | None:
        """An ``ISODateParam`` (``yyyy-mm-ddThh:mm:ss``), or with ``date_param`` a
        ``DateParam`` (``yyyyMMddHHmmss``), as epoch seconds; None when not given."""
        value = self.params.get(name)
        shape = "yyyyMMddHHmmss" if date_param else "yyyy-mm-ddThh:mm:ss"
        if value is None:
            if required:
                raise _bad(f"{name} is required ({shape})")
            return None
        try:
            return parse_date_param(value) if date_param else parse_api_date(value)
        except ValueError:
            raise _bad(f"{name} must be formatted {shape}, got {value!r}") from None

    def date_range(
        self, start: str, end: str, required: bool = False, date_param: bool = False
    ) -> tuple[int | None, ...]:
        lo, hi = self.date(start, required, date_param), self.date(end, required, date_param)
        if lo is not None and hi is not None and lo > hi:
            raise _bad(f"{start} is after {end}")
        return lo, hi

    def listing(self) -> str:
        """What names a listing across its pages: the path and every parameter but after."""
        rest = sorted((k, v) for k, v in self.params.items() if k != "after")
        return self.raw_path + "?" + "&".join(f"{k}={v}" for k, v in rest)

    def next_url(self, after: int) -> str:
        kept = [
            part
            for part in self.raw_query.split("&")
            if part and not part.startswith(("after=", "oauth_")) and part != "after"
        ]
        query = "&".join([*kept, f"after={after}"])
        return f"http://{self.host}{self.raw_path}?{query}"


def paged(
    request: Request,
    array: str,
    start: int,
    stop: int,
    rows: Callable[[int, int], bytes],
    fixed_size: int | None = None,
) -> Response:
    """One page of the rows ``start..stop-1`` (already filtered to what is visible).

    The page holds at most ``pageSize`` (or ``fixed_size``) records (fewer under a
    ``short_pages`` cap); ``paging.next`` points to ``after`` plus the records actually
    served, and is left out once nothing follows.
    """
    after, size = request.paging(fixed_size)
    caps = [request.page_cap() if request.page_cap is not None else None]
    shift = 0
    if request.listing_shift is not None:
        shift, shift_cap = request.listing_shift(after)
        caps.append(shift_cap)
    size = min([size, *(c for c in caps if c is not None)])
    total = max(0, stop - start)
    # ``shift`` records were inserted before ``after``: the page starts that much earlier
    first = min(after - shift, total)
    last = min(after - shift + size, total)
    body = rows(start + first, start + last) if last > first else b""
    served = max(0, last - first)
    paging: dict[str, Any] = {"after": after + served}
    if last < total:
        paging["next"] = request.next_url(after + served)  # after + the records served
    head = b'{"paging":' + orjson.dumps(paging) + b',"' + array.encode() + b'":['
    return Response(200, b"".join((head, body, b"]}")))


def paged_list(
    request: Request, array: str, items: list[Any], fixed_size: int | None = None
) -> Response:
    return paged(
        request,
        array,
        0,
        len(items),
        lambda a, b: b",".join(map(orjson.dumps, items[a:b])),
        fixed_size,
    )


def ok(payload: Any) -> Response:
    return Response(200, orjson.dumps(payload))


class Api:
    def __init__(self, account: Account) -> None:
        from spotler_pipeline.simulator._writes import Writes  # it imports this module

        self.account = account
        self.writes = Writes(account)

    def write_handler(self, method: str, request: Request) -> Callable[[bytes], Response]:
        """A POST or PUT's handler (the write endpoints of ``_writes``); 405 for any other
        path, before the request's signature is looked at."""
        handler = self.writes.route(method, self.segments(request))
        documented = operation(method, request.raw_path[len(PREFIX) :])
        if handler is None or documented is None:
            raise ApiError(405, "RESOURCE_NOT_FOUND", f"method {method} not allowed")
        try:
            documented.check(request.params)  # a write takes no query parameter
        except ContractViolation as exc:
            raise _bad(str(exc)) from None
        return handler

    def handle(self, request: Request) -> Response:
        segments = self.segments(request)
        documented = operation("GET", request.raw_path[len(PREFIX) :])
        if documented is None:
            raise ApiError(404, "RESOURCE_NOT_FOUND", "no such resource")
        try:
            documented.check(request.params)
        except ContractViolation as exc:
            raise _bad(str(exc)) from None
        return self.route(segments, request)

    def segments(self, request: Request) -> list[str]:
        if not request.raw_path.startswith(PREFIX + "/"):
            raise ApiError(404, "RESOURCE_NOT_FOUND", "no such resource")
        try:
            segments = [
                unquote(s, errors="strict") for s in request.raw_path[len(PREFIX) + 1 :].split("/")
            ]
        except UnicodeDecodeError:
            raise _bad("path is not valid percent-encoded UTF-8") from None
        if "" in segments:
            raise ApiError(404, "RESOURCE_NOT_FOUND", "no such resource")
        return segments

    def route(self, segments: list[str], r: Request) -> Response:  # noqa: C901
        match segments:
            case ["mailing"]:
                return self.mailing_list(r)
            case ["mailing", mid]:
                return ok(self.mailing(mid).detail(r.now))
            case ["mailing", mid, "statistics"]:
                m = self.mailing(mid)
                return ok(self.account.mailing_data(m).statistics(m, r.now))
            case ["mailing", mid, ("recipients" | "opens" | "clicks" | "bounces") as kind]:
                return self.mailing_rows(r, self.mailing(mid), kind)
            case ["mailing", mid, ("opens" | "clicks") as kind, external_id]:
                m = self.mailing(mid)
                return self.mailing_rows(r, m, kind, self.contact(external_id))
            case ["contact", external_id, "mailings"]:
                history = self.account.mailing_history(self.contact(external_id), r.now)
                return paged_list(r, "mailingHistories", history, HISTORY_PAGE_SIZE)
            case ["contact", external_id, "forms"]:
                history = self.account.form_history(self.contact(external_id), r.now)
                return paged_list(r, "formHistories", history)
            case ["contact", external_id, "campaign-mailings"]:
                history = self.account.campaign_history(self.contact(external_id), r.now)
                return paged_list(r, "campaignMailingHistories", history, HISTORY_PAGE_SIZE)
            case ["form", "list"]:
                return self.form_list(r)
            case ["form", "result", form_id, result_id]:
                return self.form_result(r, form_id, result_id)
            case ["form", "result", form_id]:
                return self.form_results(r, form_id)
            case ["campaign", "list"]:
                return ok([c.listing() for c in self.account.campaigns])
            case ["campaign", cid, "mailing"]:
                campaign = self.account.campaigns_by_id.get(cid)
                if campaign is None:
                    raise ApiError(404, "CAMPAIGN_NOTFOUND", f"campaign {cid!r} not found")
                return ok([s.listing() for s in campaign.steps])
            case ["campaign-mailing", sid]:
                return ok(self.campaign_mailing(sid).detail())
            case ["campaign-mailing", sid, ("recipients" | "opens" | "clicks" | "bounces") as k]:
                return self.campaign_rows(r, sid, k)
            case ["campaign-mailing", sid, ("opens" | "clicks") as kind, subscription]:
                return self.campaign_rows(r, sid, kind, subscription)
        raise ApiError(404, "RESOURCE_NOT_FOUND", "no such resource")

    # -- lookups -------------------------------------------------------------------------

    def mailing(self, encrypted_id: str) -> Mailing:
        mailing = self.account.mailings_by_id.get(encrypted_id)
        if mailing is None:
            raise ApiError(404, "MAILING_NOTFOUND", f"mailing {encrypted_id!r} not found")
        return mailing

    def contact(self, external_id: str) -> int:
        index = self.account.contacts.lookup(external_id)
        if index is None:
            raise ApiError(404, "CONTACT_NOT_FOUND", f"contact {external_id!r} not found")
        return index

    def campaign_mailing(self, encrypted_id: str):
        step = self.account.campaign_mailings_by_id.get(encrypted_id)
        if step is None:
            raise ApiError(404, "CAMPAIGN_NOTFOUND", f"campaign mailing {encrypted_id!r} not found")
        return step

    # -- endpoints -----------------------------------------------------------------------

    def mailing_list(self, r: Request) -> Response:
        start, end = r.date_range("fromDate", "toDate", required=True)
        assert start is not None and end is not None
        return ok([m.listing(r.now) for m in self.account.sent_mailings(start, end, r.now)])

    def mailing_rows(
        self, r: Request, mailing: Mailing, kind: str, contact: int | None = None
    ) -> Response:
        rows: RowSet = getattr(self.account.mailing_data(mailing), kind)
        r.paging()  # validate before doing any work
        visible = rows.visible(r.now) if mailing.sent(r.now) else 0
        if contact is not None:  # a MailingContactOpen/-Click: the contact is the one asked for
            rows = rows.take(np.flatnonzero(rows.contact[:visible] == contact), bare=True)
            visible = len(rows)
        return paged(r, kind, 0, visible, rows.json_rows)

    def campaign_rows(self, r: Request, sid: str, kind: str, subscription: str | None = None):
        step = self.campaign_mailing(sid)
        r.paging()
        rows: RowSet = getattr(self.account.step_data(step), kind)
        visible = rows.visible(r.now)
        start, end = r.date_range("fromDate", "toDate")
        if subscription is not None:  # as for one contact: the subscription is the one asked
            if not _DIGITS.fullmatch(subscription):
                raise _bad(f"campaignSubscriptionId must be numeric, got {subscription!r}")
            assert rows.sub is not None
            rows = rows.take(np.flatnonzero(rows.sub[:visible] == int(subscription)), bare=True)
            visible = len(rows)
        lo, hi = rows.window(start, end)
        return paged(r, kind, lo, min(hi, visible), rows.json_rows)

    def form_list(self, r: Request) -> Response:
        sub_type, state = r.params.get("formSubType"), r.params.get("formState")
        if sub_type is not None and sub_type not in FORM_SUB_TYPES:
            raise _bad(f"formSubType must be one of {', '.join(FORM_SUB_TYPES)}")
        if state is not None and state not in FORM_STATES:
            raise _bad(f"formState must be one of {', '.join(FORM_STATES)}")
        return ok(
            [
                f.listing()
                for f in self.account.forms
                if sub_type in (None, f.sub_type) and state in (None, f.state)
            ]
        )

    def form(self, form_id: str):
        form = self.account.forms_by_id.get(int(form_id)) if _DIGITS.fullmatch(form_id) else None
        if form is None:
            raise ApiError(404, "FORM_NOT_FOUND", f"form {form_id!r} not found")
        return form

    def form_result(self, r: Request, form_id: str, result_id: str) -> Response:
        form = self.form(form_id)
        data = self.account.form_data(form)
        k = data.index_of(form, int(result_id)) if _DIGITS.fullmatch(result_id) else None
        if k is None or data.ts[k] > r.now:
            raise ApiError(404, "FORMRESULT_NOT_FOUND", f"form result {result_id!r} not found")
        return ok(self.account.form_result(form, k))

    def form_results(self, r: Request, form_id: str) -> Response:
        form = self.form(form_id)
        completed = r.params.get("completed")
        if completed not in (None, "true", "false"):
            raise _bad("completed must be true or false")
        start, end = r.date_range("startDate", "endDate", date_param=True)
        data = self.account.form_data(form)
        mask = data.ts <= r.now
        if start is not None:
            mask &= data.ts >= start
        if end is not None:
            mask &= data.ts <= end
        if completed is not None:
            mask &= data.completed == (completed == "true")
        return ok([self.account.form_result(form, int(k)) for k in np.flatnonzero(mask)])
