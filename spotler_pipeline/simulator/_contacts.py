"""The account's contact pool: identities are a pure function of (seed, index).

Nothing is materialised up front: a contact's external id and encrypted id are derived
from a 64-bit hash of its index, so a pool of millions costs nothing until rendered. About
3% of contacts have no external id at all (``ContactIdentifier.externalId`` is optional in
Spotler's contract: only ``encryptedId`` is always there). Every external id embeds its
index (the digits before ``@``, or after ``K`` for CRM numbers), so
an id arriving in a URL maps back to its contact in O(1) and is then verified by
re-deriving it.
"""

from __future__ import annotations

import base64
import re

import numpy as np

FIRST_NAMES = (
    "jan", "sanne", "daan", "emma", "lucas", "julia", "sem", "tess", "finn", "sophie",
    "levi", "anna", "noah", "eva", "milan", "lotte", "bram", "fleur", "ruben", "lisa",
    "thomas", "iris", "jesse", "noor", "joost", "chloë", "josé", "zoë", "renée", "andré",
    "mohammed", "fatima", "yusuf", "sara", "kees", "marieke",
)  # fmt: skip
LAST_NAMES = (
    "jansen", "devries", "vandijk", "bakker", "visser", "smit", "meijer", "deboer",
    "mulder", "degroot", "bos", "vos", "peters", "hendriks", "vanleeuwen", "dekker",
    "brouwer", "dewit", "dijkstra", "smits", "o'brien", "yilmaz", "elamrani", "nguyen",
)  # fmt: skip
DOMAINS = (
    "gmail.com", "hotmail.com", "outlook.com", "ziggo.nl", "kpnmail.nl", "live.nl",
    "icloud.com", "yahoo.com", "xs4all.nl", "planet.nl", "example.nl", "bedrijf-bv.nl",
)  # fmt: skip
TAGS = ("news", "shop", "promo", "spotler", "mail")

NO_EXTERNAL_ID = 97  # hash buckets 97-99 of 100: contacts without an external id
_INDEX_IN_EMAIL = re.compile(r"(\d+)@[^@]+$")
_INDEX_IN_CRM = re.compile(r"K(\d{8,})$")

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def mix64(values: np.ndarray, salt: int) -> np.ndarray:
    """SplitMix64 finaliser over a uint64 array (vectorised, deterministic)."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64) * _GOLDEN + np.uint64(salt & 0xFFFFFFFFFFFFFFFF)
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def opaque_ids(seed: int, namespace: int, index: np.ndarray) -> list[str]:
    """Random-looking 24-character URL-safe ids (like Spotler's ``encryptedId``)."""
    index = np.asarray(index, dtype=np.uint64)
    if len(index) == 0:
        return []
    salt = (seed * 1_000_003 + namespace) * 7919
    words = np.stack([mix64(index, salt + k) for k in range(3)], axis=1)
    raw = words.view(np.uint8).reshape(len(index), 24)[:, :18].tobytes()
    text = base64.urlsafe_b64encode(raw).decode("ascii")
    return [text[i : i + 24] for i in range(0, len(text), 24)]


class Contacts:
    """``size`` contacts with deterministic identities."""

    def __init__(self, seed: int, size: int) -> None:
        self.seed = seed
        self.size = size

    def external_ids(self, index: np.ndarray) -> list[str | None]:
        """Each contact's external id (an e-mail address or a CRM number), None for the
        contacts that have none."""
        index = np.asarray(index, dtype=np.int64)
        h = mix64(index, self.seed * 31 + 5)
        style = (h % np.uint64(100)).tolist()
        first = (h >> np.uint64(8)) % np.uint64(len(FIRST_NAMES))
        last = (h >> np.uint64(16)) % np.uint64(len(LAST_NAMES))
        domain = (h >> np.uint64(24)) % np.uint64(len(DOMAINS))
        tag = (h >> np.uint64(32)) % np.uint64(len(TAGS))
        out = []
        for i, s, f, la, d, t in zip(
            index.tolist(),
            style,
            first.tolist(),
            last.tolist(),
            domain.tolist(),
            tag.tolist(),
            strict=True,
        ):
            fn, ln, dom = FIRST_NAMES[f], LAST_NAMES[la], DOMAINS[d]
            if s >= NO_EXTERNAL_ID:
                out.append(None)
            elif s < 50:
                out.append(f"{fn}.{ln}{i}@{dom}")
            elif s < 64:
                out.append(f"{fn}{i}@{dom}")
            elif s < 78:
                out.append(f"{fn}+{TAGS[t]}{i}@{dom}")
            elif s < 82:
                out.append(f"{fn}&{ln}{i}@{dom}")
            elif s < 90:
                out.append(f"{fn}_{ln}{i}@{dom}")
            else:
                out.append(f"K{i:08d}")
        return out

    def encrypted_ids(self, index: np.ndarray) -> list[str]:
        return opaque_ids(self.seed, 1, index)

    def identifiers(self, index: np.ndarray) -> list[str]:
        """JSON text of ``contactIdentifier`` objects (ids never need JSON escaping);
        ``externalId`` left out for a contact without one."""
        return [
            f'{{"externalId":"{e}","encryptedId":"{c}"}}' if e else f'{{"encryptedId":"{c}"}}'
            for e, c in zip(self.external_ids(index), self.encrypted_ids(index), strict=True)
        ]

    def lookup(self, external_id: str) -> int | None:
        """The index of the contact with this external id, or None if there is none."""
        match = _INDEX_IN_EMAIL.search(external_id) or _INDEX_IN_CRM.fullmatch(external_id)
        if match is None:
            return None
        index = int(match.group(1))
        if index >= self.size:
            return None
        if self.external_ids(np.array([index]))[0] != external_id:
            return None
        return index
