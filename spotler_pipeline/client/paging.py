"""The paging loop shared by the record and the columnar paths, and the tolerant decoding of
JSON bodies (paged objects, bare arrays, unpaged lists).

Paging follows the API notes: ``after`` is the offset of the first record, ``pageSize`` the
most records a page may hold. ``paging.next`` is what says whether more follows: the loop
keeps requesting pages while it is present and non-empty. It stops on an empty page, on an
absent or empty ``paging.next``, or on a bare-array answer (the whole result at once). A page
shorter than ``pageSize`` alone never ends the listing: a server may cap its pages below the
size asked for while ``next`` still points further. The next ``after`` is computed here, as
``after`` plus the number of records actually received; the ``next`` URL itself is never
followed. A server that answers the same records again instead of the next page raises
:class:`RepeatedPageError` rather than being read forever.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

from spotler_pipeline.client.transport import BodyError

__all__ = [
    "Page",
    "RepeatedPageError",
    "decode_json",
    "iter_pages",
    "json_list",
    "json_object",
    "json_page",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page: its rows (a list of dicts or an Arrow batch), how many, and what the
    server said about the rest."""

    rows: T
    count: int
    has_next: bool
    complete: bool = False  # a bare array: the server sent everything at once


class RepeatedPageError(BodyError):
    """The server answered the same rows as for the previous page."""


def iter_pages(
    fetch: Callable[[int, Callable[[Page[T]], None]], Page[T]],
    same_rows: Callable[[T, T], bool],
    describe: str,
) -> Iterator[Page[T]]:
    """Yield pages until the last one: an empty page, a page without ``paging.next``, or a
    complete (bare-array) answer. A short page with ``next`` is not the last one.

    ``fetch(after, check)`` requests the page starting at ``after`` and must call
    ``check(page)`` while it can still retry: ``check`` raises :class:`RepeatedPageError`
    when the rows equal those of the page before (a server stuck on one page would
    otherwise be read forever). Only the previous page is kept for that comparison.
    """
    after = 0
    number = 1
    previous: Page[T] | None = None
    while True:
        page = fetch(after, _repeat_check(previous, number, same_rows, describe))
        yield page
        if page.complete or page.count == 0 or not page.has_next:
            return
        after += page.count  # the rows received, whatever pageSize asked for
        number += 1
        previous = page


def _repeat_check(
    previous: Page[T] | None,
    number: int,
    same_rows: Callable[[T, T], bool],
    describe: str,
) -> Callable[[Page[T]], None]:
    def check(page: Page[T]) -> None:
        if (
            previous is not None
            and page.count > 0
            and page.count == previous.count
            and same_rows(page.rows, previous.rows)
        ):
            raise RepeatedPageError(
                f"the server repeated page {number - 1} of {describe} "
                f"instead of sending page {number}"
            )

    return check


def decode_json(body: bytes) -> Any:
    if not body.strip():
        raise BodyError("empty body where JSON was expected")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyError(f"body is not valid JSON ({exc}; {len(body)} bytes)") from None


def json_object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise BodyError(f"expected a JSON object, got {_kind(data)}")
    return data


def json_list(data: Any) -> list[Any]:
    """An unpaged list answer: a bare array, or (tolerated) an object holding one array."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        arrays = [v for v in data.values() if isinstance(v, list)]
        if len(arrays) == 1:
            return arrays[0]
    raise BodyError(f"expected a JSON array, got {_kind(data)}")


def json_page(data: Any, array_field: str) -> Page[list[Any]]:
    """A paged answer as rows: the object's ``array_field`` (or, tolerated, its only array
    field; absent or null means no rows), or a bare array taken as the complete result."""
    if isinstance(data, list):
        return Page(data, len(data), has_next=False, complete=True)
    if not isinstance(data, dict):
        raise BodyError(f"expected a paged JSON object, got {_kind(data)}")
    rows = data.get(array_field)
    if rows is None:
        arrays = [v for v in data.values() if isinstance(v, list)]
        if len(arrays) > 1:
            raise BodyError(f"no {array_field!r} array in the page and several others")
        rows = arrays[0] if arrays else []
    if not isinstance(rows, list):
        raise BodyError(f"{array_field!r} is {_kind(rows)}, not an array")
    return Page(rows, len(rows), has_next=_has_next(data.get("paging")))


def _has_next(paging: Any) -> bool:
    if not isinstance(paging, dict):
        return False
    return bool(paging.get("next"))


def _kind(data: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", type(None): "null"}.get(
        type(data), type(data).__name__
    )
