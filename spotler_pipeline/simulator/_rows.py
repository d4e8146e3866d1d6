"""Interaction rows of one endpoint, rendered to JSON bytes in cached 10,000-row chunks.

A page is a byte slice of at most two chunks, so any ``after``/``pageSize`` combination and
any "visible as of now" prefix is served without re-rendering anything once warm.
"""

from __future__ import annotations

import threading

import numpy as np

from spotler_pipeline.simulator._contacts import Contacts
from spotler_pipeline.simulator._time import format_many

CHUNK = 10_000
BLOCK = 4_096


class Directory:
    """``contactIdentifier`` JSON of a fixed list of contacts, rendered once per block.

    A mailing's opens, clicks and bounces all point into its recipients, so their rows
    reuse the recipients' rendered identifiers instead of deriving them again.
    """

    def __init__(self, contacts: Contacts, contact: np.ndarray) -> None:
        self.contacts = contacts
        self.contact = contact
        self._blocks: dict[int, list[str]] = {}
        self._lock = threading.Lock()

    def _block(self, b: int) -> list[str]:
        hit = self._blocks.get(b)
        if hit is None:
            with self._lock:
                hit = self._blocks.get(b)
                if hit is None:
                    hit = self.contacts.identifiers(self.contact[b * BLOCK : (b + 1) * BLOCK])
                    self._blocks[b] = hit
        return hit

    def get(self, positions: np.ndarray) -> list[str]:
        blocks = positions // BLOCK
        out = []
        for pos, b in zip(positions.tolist(), blocks.tolist(), strict=True):
            out.append(self._block(b)[pos - b * BLOCK])
        return out


class RowSet:
    """Rows ordered by ``ts`` (when given; else in stored order) with optional columns."""

    def __init__(
        self,
        contacts: Contacts,
        contact: np.ndarray,
        ts: np.ndarray | None = None,
        date_field: str | None = None,
        link: np.ndarray | None = None,
        hard: np.ndarray | None = None,
        sub: np.ndarray | None = None,
        directory: Directory | None = None,
        pos: np.ndarray | None = None,
        bare: bool = False,
    ) -> None:
        """``contact`` holds contact indices; with a ``directory``, ``pos`` holds each row's
        position in it (and identifiers come from there). ``bare`` rows leave out whom they
        are about (``contactIdentifier``, ``campaignSubscriptionId``): the rows of one
        contact or one subscription (``MailingContactOpen``/``MailingContactClick``)."""
        self.bare = bare
        self.contacts = contacts
        self.directory = directory
        self.pos = pos
        self.contact = contact
        self.ts = ts
        self.date_field = date_field
        self.link = link
        self.hard = hard
        self.sub = sub
        self._chunks: dict[int, tuple[bytes, np.ndarray]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.contact)

    def visible(self, now: int) -> int:
        """How many rows exist at ``now`` (rows are time-ordered, so this is a prefix)."""
        if self.ts is None:
            return len(self.contact)
        return int(np.searchsorted(self.ts, now, side="right"))

    def window(self, start: int | None, end: int | None) -> tuple[int, int]:
        """Row range with ``start <= ts <= end`` (both inclusive; None = unbounded)."""
        assert self.ts is not None
        lo = 0 if start is None else int(np.searchsorted(self.ts, start, side="left"))
        hi = len(self.ts) if end is None else int(np.searchsorted(self.ts, end, side="right"))
        return lo, max(lo, hi)

    def take(self, rows: np.ndarray, bare: bool = False) -> RowSet:
        """A new, uncached row set of the given row numbers (e.g. one contact's rows)."""

        def pick(column: np.ndarray | None) -> np.ndarray | None:
            return None if column is None else column[rows]

        return RowSet(
            self.contacts,
            self.contact[rows],
            pick(self.ts),
            self.date_field,
            pick(self.link),
            pick(self.hard),
            pick(self.sub),
            self.directory,
            pick(self.pos),
            bare,
        )

    def render(self, a: int, b: int) -> list[str]:
        if self.bare:
            parts = ["{"] * (b - a)
        elif self.directory is not None and self.pos is not None:
            parts = [f'{{"contactIdentifier":{i},' for i in self.directory.get(self.pos[a:b])]
        else:
            identifiers = self.contacts.identifiers(self.contact[a:b])
            parts = [f'{{"contactIdentifier":{i},' for i in identifiers]
        if self.ts is not None:
            field = self.date_field
            parts = [
                f'{p}"{field}":"{d}",'
                for p, d in zip(parts, format_many(self.ts[a:b]), strict=True)
            ]
        if self.link is not None:
            parts = [
                f'{p}"linkId":{x},' for p, x in zip(parts, self.link[a:b].tolist(), strict=True)
            ]
        if self.hard is not None:
            kinds = ('"SOFTBOUNCE"', '"HARDBOUNCE"')
            parts = [
                f'{p}"type":{kinds[x]},'
                for p, x in zip(parts, self.hard[a:b].tolist(), strict=True)
            ]
        if self.sub is not None and not self.bare:
            parts = [
                f'{p}"campaignSubscriptionId":{x},'
                for p, x in zip(parts, self.sub[a:b].tolist(), strict=True)
            ]
        return [p[:-1] + "}," for p in parts]

    def _chunk(self, c: int) -> tuple[bytes, np.ndarray]:
        hit = self._chunks.get(c)
        if hit is not None:
            return hit
        with self._lock:
            hit = self._chunks.get(c)
            if hit is None:
                rows = [r.encode() for r in self.render(c * CHUNK, min((c + 1) * CHUNK, len(self)))]
                offsets = np.zeros(len(rows) + 1, dtype=np.int64)
                np.cumsum([len(r) for r in rows], out=offsets[1:])
                hit = (b"".join(rows), offsets)
                self._chunks[c] = hit
            return hit

    def json_rows(self, a: int, b: int) -> bytes:
        """Rows ``a..b-1`` as comma-separated JSON objects (no brackets)."""
        if a >= b:
            return b""
        pieces = []
        for c in range(a // CHUNK, (b - 1) // CHUNK + 1):
            blob, offsets = self._chunk(c)
            s = max(a - c * CHUNK, 0)
            e = min(b - c * CHUNK, len(offsets) - 1)
            pieces.append(memoryview(blob)[offsets[s] : offsets[e]])
        pieces[-1] = pieces[-1][:-1]  # every rendered row ends with a separating comma
        return b"".join(pieces)

    def warm(self) -> int:
        """Render every chunk now; returns the number of rows."""
        for c in range((len(self) + CHUNK - 1) // CHUNK):
            self._chunk(c)
        return len(self)

    def rendered_bytes(self) -> int:
        return sum(len(blob) for blob, _ in self._chunks.values())
