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
)
DEFAULT_MAX_ROWS = 100


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
        if kind == "short_pages":
            max_rows = params.setdefault("max_rows", DEFAULT_MAX_ROWS)
            if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
                raise ValueError(f"short_pages needs max_rows >= 1, got {max_rows!r}")
        self.kind = kind
        self.path_pattern = path_pattern
        self.regex = re.compile(path_pattern)
        self.times = times
        self.after_requests = after_requests
        self.params = params
        self.seen = 0
        self.fired = 0

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
                if fault.kind == "short_pages" or (fault.kind == "repeat_page" and not pageable):
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
