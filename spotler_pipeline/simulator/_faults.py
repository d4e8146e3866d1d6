"""Injected faults: what can go wrong between a client and Spotler, on demand."""

from __future__ import annotations

import re
import threading
from typing import Any

KINDS = (
    "rate_limit",  # 429 with Retry-After: retry_after (default 1)
    "server_error",  # status (500 or 503, default 503) with a BACKEND_EXCEPTION body
    "slow",  # sleep `seconds` (default 2) before answering normally
    "drop_connection",  # headers with the full Content-Length, part of the body, then close
    "truncated_body",  # 200 whose JSON is cut at `fraction`; Content-Length matches the cut
    "not_json",  # 200 with an HTML error page (a proxy's), Content-Type text/html
    "repeat_page",  # a paged request (after > 0) gets the previous page's response again
    # every paged answer holds at most `max_rows` records (default 100), whatever pageSize
    # asked for, while paging.next still points to after + records served: a server capping
    # its pages below pageSize. Counts paged answers only; fires alongside the other kinds.
    "short_pages",
    # A live account recording opens and clicks while a listing is read: once per listing
    # (a path and its query but ``after``), after its first page was served, a record is
    # inserted ahead of the reader's offset, so every later record moves one place on and
    # the next page starts with the previous page's last row again (the new record is never
    # served to this reader). Pages of the listing hold at most `max_rows` records (default
    # 1000). `times` counts the listings shifted; a re-read from after=0 is not shifted again.
    "shifted_listing",
)
DEFAULT_MAX_ROWS = 100
SHIFTED_LISTING_MAX_ROWS = 1000


class Fault:
    """One fault rule.

    ``path_pattern`` is a regex searched in the request path (percent-encoded, including
    the ``/integrationservice-1.1.0`` prefix). The fault skips the first
    ``after_requests`` matching requests, then fires on the next ``times`` ones
    (``times=None``: forever). ``repeat_page`` only counts paged requests with ``after >
    0``; ``short_pages`` only counts paged answers (of any ``after``) and, as it shapes the
    answer rather than replacing it, does not keep another fault from firing on the same
    request. Other keyword arguments are the kind's parameters (see ``KINDS``).
    """

    def __init__(
        self,
        kind: str,
        path_pattern: str = ".*",
        times: int | None = 1,
        after_requests: int = 0,
        **params: Any,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {KINDS}")
        if kind in ("short_pages", "shifted_listing"):
            default = DEFAULT_MAX_ROWS if kind == "short_pages" else SHIFTED_LISTING_MAX_ROWS
            max_rows = params.setdefault("max_rows", default)
            if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
                raise ValueError(f"{kind} needs max_rows >= 1, got {max_rows!r}")
        self.kind = kind
        self.path_pattern = path_pattern
        self.regex = re.compile(path_pattern)
        self.times = times
        self.after_requests = after_requests
        self.params = params
        self.seen = 0
        self.fired = 0
        #: shifted_listing: each listing's state (started, shifted, done)
        self.listings: dict[str, str] = {}

    def __repr__(self) -> str:
        return (
            f"Fault({self.kind!r}, path_pattern={self.path_pattern!r}, times={self.times}, "
            f"after_requests={self.after_requests}, params={self.params}, fired={self.fired})"
        )

    def count(self, may_fire: bool = True) -> bool:
        """Count a request this fault matches; True when it fires on it (counted as fired):
        past ``after_requests``, not yet fired ``times`` times, and ``may_fire``."""
        self.seen += 1
        exhausted = self.times is not None and self.fired >= self.times
        if may_fire and self.seen > self.after_requests and not exhausted:
            self.fired += 1
            return True
        return False

    @classmethod
    def from_json(cls, spec: dict[str, Any]) -> Fault:
        spec = dict(spec)
        return cls(spec.pop("kind"), **spec)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path_pattern": self.path_pattern,
            "times": self.times,
            "after_requests": self.after_requests,
            **self.params,
            "fired": self.fired,
        }


SHAPING = ("short_pages", "shifted_listing")  # shape a paged answer rather than replace it


class FaultBook:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def active(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def take(self, path: str, pageable: bool) -> Fault | None:
        """The fault to apply to this request, if any (counts it as fired)."""
        chosen = None
        with self._lock:
            for fault in self._faults:
                if fault.kind in SHAPING or (fault.kind == "repeat_page" and not pageable):
                    continue
                if fault.regex.search(path) and fault.count(may_fire=chosen is None):
                    chosen = fault
        return chosen

    def page_cap(self, path: str) -> int | None:
        """The most records a paged answer to ``path`` may hold under the ``short_pages``
        faults that fire on it (counted as fired), else None."""
        cap = None
        with self._lock:
            for fault in self._faults:
                if fault.kind != "short_pages" or not fault.regex.search(path):
                    continue
                if fault.count():
                    max_rows = fault.params["max_rows"]
                    cap = max_rows if cap is None else min(cap, max_rows)
        return cap

    def listing_shift(self, path: str, listing: str, after: int) -> tuple[int, int | None]:
        """``(records inserted ahead of the reader, page cap)`` for a page of ``listing`` (the
        path and query but ``after``) starting at ``after``, under the ``shifted_listing``
        faults on ``path``: a listing whose first page was served is shifted by one on the
        next page asked for and on every later one (counted as fired once per listing)."""
        shift, cap = 0, None
        with self._lock:
            for fault in self._faults:
                if fault.kind != "shifted_listing" or not fault.regex.search(path):
                    continue
                max_rows = fault.params["max_rows"]
                cap = max_rows if cap is None else min(cap, max_rows)
                state = fault.listings.get(listing)
                if after == 0:
                    fault.listings[listing] = "started" if state is None else "done"
                elif state == "started":
                    fault.listings[listing] = "shifted" if fault.count() else "done"
                if after > 0 and fault.listings.get(listing) == "shifted":
                    shift = 1
        return shift, cap
