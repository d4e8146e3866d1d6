"""The generated Spotler account: ground truth for the simulator's answers and for tests.

The account of a ``(seed, scale)`` is a function of calendar days (Europe/Amsterdam), never
of the moment a simulator starts: the mailings sent on a day, their ids, names, send times,
audiences, links and every interaction come from RNG streams seeded by ``(seed, day)`` and
``(seed, mailing key)``, where a mailing's key is derived from its send day and its rank
that day. Campaign subscriptions and form submissions are drawn per ``(seed, item, day)``
the same way. Campaigns, their steps, forms and contacts depend on the seed alone. So two
simulators of one seed and scale started days apart serve identical data for every day
both cover; ``heavy_days`` adds one big mailing on each given day (benchmarks) and leaves
the rest of that day as it was.

An ``Account`` covers a window of days: mailings from ``anchor_day - days`` to
``anchor_day + FUTURE_DAYS``; campaign subscriptions and form submissions from
``CAMPAIGN_LEAD_DAYS`` before that to ``EVENT_FUTURE_DAYS`` after the anchor. Only the
window's ends depend on the anchor, never a day's content. Interaction data of a mailing,
campaign or form is generated on first use and cached, so start-up is instant at any scale.

What is visible depends on the simulated clock ``now`` (epoch seconds): a mailing's
recipients exist once its ``scheduledStartDate`` has passed, and every open, click, bounce,
campaign send and form submission exists once its own timestamp is ``<= now``.

Date-range filters (``fromDate``/``toDate`` on ``/mailing`` and the campaign-mailing
endpoints, ``startDate``/``endDate`` on form results) are **inclusive at both ends**, and
some events fall exactly on midnight: a client that asks for ``[day 00:00:00, next day
00:00:00]`` must itself drop rows stamped with the upper bound, or it double-counts them.

Optional fields are absent, never null, as Spotler's contract has them: the ones without a
value (an SMS's subject, ``fromEmail``, ``archiveLink`` and links; a history row's ``bounce``
when nothing bounced; the answers of a submission that answered nothing; a campaign's
triggers when it has none; the external id of a contact without one), and, for some items
drawn per seed, fields an account may simply not have: the four eCommerce statistics (a
mailing sent without Spotler eCommerce), ``archiveLink``, a link's ``code`` or ``type``.
With ``contract_exact`` every optional field the data does not need is left out everywhere
(``archiveLink``, ``subject``, ``fromEmail``, link ``code``/``type``, the eCommerce figures,
an unanswered question's ``answer``); links, answers, triggers and external ids stay where
they carry data.

Items can be deleted "upstream" (:meth:`Account.delete_mailing`,
:meth:`Account.delete_campaign_mailing`, :meth:`Account.delete_form`): they leave their
listing and every endpoint about them answers 404, or, with ``keep_listed``, stay listed
while everything else about them answers 404 (deleted between a listing and a fetch).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from spotler_pipeline.simulator._contacts import Contacts, opaque_ids
from spotler_pipeline.simulator._rows import Directory, RowSet
from spotler_pipeline.simulator._time import (
    ACCOUNT_TZ,
    DAY,
    HOUR,
    NEVER,
    format_many,
    format_one,
    local_day,
    local_midnight,
)

BASE_POOL = 250_000  # contacts at scale 1.0; target groups are fractions of it
HORIZON = 30 * DAY  # no interaction is recorded later than this after a send
HEAVY_ROWS_PER_RECIPIENT = 1.54  # recipients + opens + clicks + bounces, heavy-day mailings
FUTURE_DAYS = 2  # mailings are scheduled up to this many days after the anchor day
CAMPAIGN_LEAD_DAYS = 14  # campaign subscriptions and form submissions start this much earlier
EVENT_FUTURE_DAYS = 30  # ... and are drawn up to this many days after the anchor day
MAILING_SLOTS = 16  # mailing keys per day: day.toordinal() * MAILING_SLOTS + rank that day
HEAVY_SLOT = MAILING_SLOTS - 1  # the rank of a heavy day's big mailing
DAY_IDS = 10**4  # subscription / form result ids per item per day (see _day_ids)
ID_EPOCH = date(2020, 1, 1)  # day 0 of those ids, which fit Spotler's int32 until 2047

LINK_TYPES = (
    "webshop", "conversion", "openhtml", "unsubscribe", "editprofile",
    "twitter", "facebook", "linkedin", "whatsapp",
)  # fmt: skip
LINK_CLICK_WEIGHT = {
    "webshop": 5.0, "conversion": 3.0, "openhtml": 1.0, "unsubscribe": 0.6, "editprofile": 0.4,
    "twitter": 0.2, "facebook": 0.3, "linkedin": 0.2, "whatsapp": 0.3,
}  # fmt: skip
TARGET_GROUPS = (
    ("Alle abonnees", 0.92), ("Nieuwsbrief NL", 0.55), ("Nieuwsbrief BE", 0.12),
    ("Actieve kopers 12m", 0.25), ("VIP-klanten", 0.02), ("Inactief > 6 maanden", 0.18),
    ("Regio Randstad", 0.35), ("Zakelijke klanten", 0.06),
)  # fmt: skip
MAILING_TOPICS = (
    "Nieuwsbrief week {week}", "Zomersale: tot 50% korting", "Nieuwe collectie is binnen",
    "Alleen voor jou: {pct}% korting", "Black Friday preview", "Webinar-uitnodiging",
    "Tips van onze experts", "Laatste kans: actie eindigt vandaag", "Klantenservice-update",
    "Onze favorieten van week {week}", "Weekendactie", "Gratis verzending dit weekend",
)  # fmt: skip
FREE_TEXT = ("Prima", "Snelle levering, top!", "Nee", "Jan", "06-12345678", "Kan beter.")
SMS_TOPICS = ("SMS flash sale", "SMS: je pakket", "SMS weekendactie", "SMS laatste kans")
SENDERS = ("Sanne de Vries", "Pieter Bakker", "Marketing team", "Ayşe Yılmaz")
SEND_SLOTS = (  # (hour, minute, second, weight): mostly office hours, some exactly at midnight
    (0, 0, 0, 0.06), (7, 30, 0, 0.12), (9, 0, 0, 0.2), (10, 0, 0, 0.15), (12, 15, 0, 0.1),
    (14, 0, 0, 0.12), (16, 45, 30, 0.08), (19, 0, 0, 0.1), (20, 30, 0, 0.07),
)  # fmt: skip


def _rng(seed: int, *parts: int) -> np.random.Generator:
    return np.random.default_rng([seed, *parts])


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def _wall_clock(day: date, hour: int, minute: int = 0, second: int = 0) -> int:
    """Epoch seconds of a wall-clock time on ``day`` in the account zone."""
    return int(
        datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=ACCOUNT_TZ).timestamp()
    )


def _times_in_day(rng: np.random.Generator, day: date, count: int) -> np.ndarray:
    """``count`` moments of ``day`` (account zone, epoch seconds), uniform and sorted."""
    midnight = local_midnight(day)
    length = local_midnight(day + timedelta(days=1)) - midnight
    return np.sort(rng.integers(midnight, midnight + length, count))


def _day_ids(item: int, day: date, count: int) -> np.ndarray:
    """Ids of the ``count`` subscriptions / submissions of one item (1-20) on ``day`` (in
    time order): ``item * 10**8 + (day - ID_EPOCH).days * 10**4 + k``, k from 1: a function
    of the day alone, and an int32 as the contract types ``campaignSubscriptionId`` and
    ``formResultId``."""
    if count >= DAY_IDS:
        raise ValueError(f"more than {DAY_IDS - 1} ids in one day")
    offset = (day - ID_EPOCH).days
    if not 0 <= offset < 10**8 // DAY_IDS:
        raise ValueError(f"no ids for {day}: the simulator's ids cover 2020-2047")
    first = item * 10**8 + offset * DAY_IDS
    return first + np.arange(1, count + 1, dtype=np.int64)


def _repeat_events(
    rng: np.random.Generator,
    who: np.ndarray,
    first: np.ndarray,
    extra: np.ndarray,
    mean_gap: float,
    limit: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Expand each ``who[i]`` into ``1 + extra[i]`` events from ``first[i]`` on; repeats that
    would fall after ``limit[i]`` are dropped (clamping them to the limit made several events
    of one contact share a timestamp: duplicate keys in the interaction tables)."""
    counts = 1 + extra
    rep = np.repeat(who, counts)
    gaps = rng.exponential(mean_gap, len(rep)).astype(np.int64) + 1
    starts = np.cumsum(counts) - counts
    gaps[starts] = 0
    cumulative = np.cumsum(gaps)
    offset = cumulative - np.repeat(cumulative[starts], counts)
    times = np.repeat(first, counts) + offset
    keep = times <= np.repeat(limit, counts)
    return rep[keep], times[keep]


@dataclass
class Interactions:
    """Per-recipient outcomes and time-ordered event rows (positions index the recipients)."""

    first_open: np.ndarray
    first_click: np.ndarray
    bounce_ts: np.ndarray
    bounce_hard: np.ndarray
    rendered: np.ndarray
    open_pos: np.ndarray
    open_ts: np.ndarray
    click_pos: np.ndarray
    click_ts: np.ndarray
    click_link: np.ndarray  # index into the message's links
    bounce_pos: np.ndarray
    bounce_at: np.ndarray = field(init=False)  # bounce_ts of the bounce rows
    bounce_type_hard: np.ndarray = field(init=False)  # bounce_hard of the bounce rows

    def __post_init__(self) -> None:
        self.bounce_at = self.bounce_ts[self.bounce_pos]
        self.bounce_type_hard = self.bounce_hard[self.bounce_pos]


#: First-open delays: a lognormal mix (weight, median seconds, sigma). Most openers open
#: within hours, a second wave within the first day or two, and a tail over about 30 days
#: (cut at HORIZON): ~74% of the eventual openers are in after 24 hours, ~83% after 48.
OPEN_DELAY_MIX = ((0.45, 1.5 * HOUR, 1.0), (0.35, 12 * HOUR, 0.8), (0.20, 4 * DAY, 0.9))


def open_delays(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds from the send to each of ``n`` openers' first open (see OPEN_DELAY_MIX)."""
    weights = np.array([w for w, _, _ in OPEN_DELAY_MIX])
    component = rng.choice(len(OPEN_DELAY_MIX), n, p=weights / weights.sum())
    medians = np.array([m for _, m, _ in OPEN_DELAY_MIX])[component]
    sigmas = np.array([s for _, _, s in OPEN_DELAY_MIX])[component]
    return medians * np.exp(sigmas * rng.standard_normal(n))


def simulate(
    rng: np.random.Generator,
    sent: np.ndarray,
    email: bool,
    open_rate: float,
    click_rate: float,
    bounce_rate: float,
    link_weights: np.ndarray,
) -> Interactions:
    """Opens, clicks and bounces for recipients sent at ``sent`` (epoch seconds each)."""
    n = len(sent)
    bounced = rng.random(n) < bounce_rate
    hard = bounced & (rng.random(n) < 0.4)
    delay = np.where(hard, rng.exponential(300, n) + 5, rng.exponential(3 * HOUR, n) + 60)
    bounce_ts = np.where(bounced, sent + delay.astype(np.int64), NEVER)
    first_open = np.full(n, NEVER, dtype=np.int64)
    first_click = np.full(n, NEVER, dtype=np.int64)
    rendered = rng.random(n) < 0.85
    empty = np.zeros(0, dtype=np.int64)
    open_pos = open_ts = click_pos = click_ts = click_link = empty
    if email:
        op = np.flatnonzero(~bounced & (rng.random(n) < open_rate))
        delay = open_delays(rng, len(op))
        limit = sent[op] + HORIZON
        first_open[op] = np.minimum(sent[op] + 30 + delay.astype(np.int64), limit)
        extra = np.minimum(rng.geometric(0.65, len(op)) - 1, 8)
        open_pos, open_ts = _repeat_events(rng, op, first_open[op], extra, DAY, limit)
        cp = op[rng.random(len(op)) < click_rate]
        if len(link_weights) and len(cp):
            limit = sent[cp] + HORIZON
            first = np.minimum(
                first_open[cp] + 5 + rng.exponential(600, len(cp)).astype(np.int64), limit
            )
            first_click[cp] = first
            extra = np.minimum(rng.geometric(0.6, len(cp)) - 1, 6)
            click_pos, click_ts = _repeat_events(rng, cp, first, extra, 6 * HOUR, limit)
            click_link = rng.choice(len(link_weights), len(click_pos), p=link_weights)
    order = np.argsort(open_ts, kind="stable")
    open_pos, open_ts = open_pos[order], open_ts[order]
    order = np.argsort(click_ts, kind="stable")
    click_pos, click_ts, click_link = click_pos[order], click_ts[order], click_link[order]
    bounce_pos = np.flatnonzero(bounced)
    order = np.argsort(bounce_ts[bounce_pos], kind="stable")
    bounce_pos = bounce_pos[order]
    return Interactions(
        first_open=first_open,
        first_click=first_click,
        bounce_ts=bounce_ts,
        bounce_hard=hard,
        rendered=rendered,
        open_pos=open_pos,
        open_ts=open_ts,
        click_pos=click_pos,
        click_ts=click_ts,
        click_link=click_link,
        bounce_pos=bounce_pos,
    )


def _combine(parts: list[Interactions], order: np.ndarray) -> Interactions:
    """Several ``simulate`` results as one: recipients are the parts' recipients
    concatenated, then taken in ``order``; event rows are re-sorted by time (ties by
    recipient, then as they were), so the result depends on the parts' content only."""
    sizes = [len(p.first_open) for p in parts]
    offsets = np.cumsum([0, *sizes])[:-1].astype(np.int64)
    where = np.empty(len(order), dtype=np.int64)
    where[order] = np.arange(len(order), dtype=np.int64)

    def cat(name: str, dtype: type = np.int64) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts] or [np.zeros(0, dtype=dtype)])

    def positions(name: str) -> np.ndarray:
        shifted = [getattr(p, name) + off for p, off in zip(parts, offsets, strict=True)]
        return where[np.concatenate(shifted or [np.zeros(0, dtype=np.int64)])]

    open_pos, open_ts = positions("open_pos"), cat("open_ts")
    k = np.lexsort((open_pos, open_ts))
    open_pos, open_ts = open_pos[k], open_ts[k]
    click_pos, click_ts, click_link = positions("click_pos"), cat("click_ts"), cat("click_link")
    k = np.lexsort((click_pos, click_ts))
    click_pos, click_ts, click_link = click_pos[k], click_ts[k], click_link[k]
    bounce_ts, hard = cat("bounce_ts")[order], cat("bounce_hard", bool)[order]
    bounce_pos = np.flatnonzero(bounce_ts != NEVER)
    bounce_pos = bounce_pos[np.argsort(bounce_ts[bounce_pos], kind="stable")]
    return Interactions(
        first_open=cat("first_open")[order],
        first_click=cat("first_click")[order],
        bounce_ts=bounce_ts,
        bounce_hard=hard,
        rendered=cat("rendered", bool)[order],
        open_pos=open_pos,
        open_ts=open_ts,
        click_pos=click_pos,
        click_ts=click_ts,
        click_link=click_link,
        bounce_pos=bounce_pos,
    )


def _links(rng: np.random.Generator, base_id: int, slug: str, email: bool) -> list[dict]:
    if not email:
        return []
    kinds = ["openhtml"] + ["webshop"] * int(rng.integers(1, 5))
    kinds += ["conversion"] * int(rng.integers(0, 3))
    kinds += [k for k in ("facebook", "twitter", "linkedin", "whatsapp") if rng.random() < 0.4]
    kinds += ["editprofile", "unsubscribe"]
    names = {
        "openhtml": "Bekijk online",
        "webshop": "Shop nu",
        "conversion": "Bestel direct",
        "unsubscribe": "Afmelden",
        "editprofile": "Voorkeuren wijzigen",
    }
    links = []
    for k, kind in enumerate(kinds):
        link_id = base_id + k + 1
        links.append(
            {
                "id": link_id,
                "name": f"{names.get(kind, kind.capitalize())} {k + 1}",
                "url": f"https://www.example-shop.nl/{slug}/{kind}/{k + 1}?utm_source=spotler",
                "code": f"L{link_id}",
                "type": kind,
            }
        )
    return links


def _link_weights(links: list[dict]) -> np.ndarray:
    weights = np.array([LINK_CLICK_WEIGHT[link["type"]] for link in links], dtype=float)
    return weights / weights.sum() if len(weights) else weights


ECOMMERCE_STATISTICS = (
    "toWebshopCount", "shoppingcartCreatedCount", "shoppingcartConvertedCount", "conversionValue",
)  # fmt: skip
SOCIAL_LINKS = ("twitter", "facebook", "linkedin", "whatsapp")


def _without(fields: dict[str, Any], omit: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if k not in omit and v is not None}


def _content(message: dict, links: list[dict], omit: frozenset[str]) -> dict[str, Any]:
    """``message`` and ``links`` of a message's details, optional fields left out: an SMS has
    no subject, ``fromEmail`` or links; a link leaves out ``code``/``type`` when ``omit``
    says so for every link (``link.code``, ``link.type``), else a share-button link has no
    code and every seventh link no type."""
    rendered = []
    for link in links:
        gone = {k for k in ("code", "type") if f"link.{k}" in omit}
        if link["type"] in SOCIAL_LINKS:
            gone.add("code")
        if link["id"] % 7 == 0:
            gone.add("type")
        rendered.append({k: v for k, v in link.items() if k not in gone})
    content: dict[str, Any] = {"message": _without(message, omit)}
    if rendered:
        content["links"] = rendered
    return content


def optional_fields(rng: np.random.Generator, email: bool, exact: bool) -> frozenset[str]:
    """The optional fields one mailing or campaign message leaves out (module doc)."""
    omit = set() if email else {"archiveLink", "subject", "fromEmail", "ecommerce"}
    if exact:
        omit |= {"archiveLink", "subject", "fromEmail", "ecommerce", "link.code", "link.type"}
    draws = rng.random(2)
    if draws[0] < 0.25:  # sent without Spotler eCommerce
        omit.add("ecommerce")
    if draws[1] < 0.2:
        omit.add("archiveLink")
    return frozenset(omit)


@dataclass(eq=False)
class Mailing:
    """A one-off mailing (endpoints 1-9). ``index`` is its key: ``send day ordinal *
    MAILING_SLOTS + rank that day``; its id and every random draw about it derive from it."""

    index: int
    encrypted_id: str
    name: str
    type: str
    send_ts: int
    audience: int
    target_group: str
    sender: str
    message: dict
    archive_link: str
    links: list[dict]
    open_rate: float
    click_rate: float
    bounce_rate: float
    heavy: bool = False
    pool: int = 0  # recipients are drawn from contacts 0..pool-1 (0: the whole pool)
    omit: frozenset[str] = frozenset()  # optional fields it leaves out (see the module doc)
    data: MailingData | None = field(default=None, repr=False)

    def sent(self, now: int) -> bool:
        return self.send_ts <= now

    def listing(self, now: int) -> dict[str, Any]:
        return _without(
            {
                "encryptedId": self.encrypted_id,
                "name": self.name,
                "scheduledStartDate": format_one(self.send_ts),
                "type": self.type,
                "archiveLink": self.archive_link,
                "sentCount": self.audience if self.sent(now) else 0,
            },
            self.omit,
        )

    def detail(self, now: int) -> dict[str, Any]:
        return {
            **self.listing(now),
            "sender": self.sender,
            "targetGroup": self.target_group,
            **_content(self.message, self.links, self.omit),
        }


def _event_rows(
    contacts: Contacts,
    recipients: np.ndarray,
    it: Interactions,
    link_ids: np.ndarray,
    directory: Directory,
    subscriptions: np.ndarray | None,
) -> tuple[RowSet, RowSet, RowSet]:
    """The open, click and bounce rows of one message's recipients (a mailing's, or a
    campaign step's with each row's ``campaignSubscriptionId``)."""

    def rows(pos: np.ndarray, ts: np.ndarray, date_field: str, **columns: Any) -> RowSet:
        return RowSet(
            contacts,
            recipients[pos],
            ts,
            date_field,
            sub=None if subscriptions is None else subscriptions[pos],
            directory=directory,
            pos=pos,
            **columns,
        )

    return (
        rows(it.open_pos, it.open_ts, "openDate"),
        rows(it.click_pos, it.click_ts, "clickDate", link=link_ids[it.click_link]),
        rows(it.bounce_pos, it.bounce_at, "bounceDate", hard=it.bounce_type_hard),
    )


class MailingData:
    """A mailing's recipients and interactions, with JSON row sets for endpoints 4-9."""

    def __init__(self, mailing: Mailing, contacts: Contacts, seed: int) -> None:
        rng = _rng(seed, 2, mailing.index)
        n = mailing.audience
        pool = mailing.pool or contacts.size
        self.recipients_idx = np.sort(rng.choice(pool, n, replace=False, shuffle=False))
        sent = np.full(n, mailing.send_ts, dtype=np.int64)
        weights = _link_weights(mailing.links)
        it = simulate(
            rng,
            sent,
            mailing.type == "EMAIL",
            mailing.open_rate,
            mailing.click_rate,
            mailing.bounce_rate,
            weights,
        )
        self.it = it
        link_ids = np.array([link["id"] for link in mailing.links] or [0], dtype=np.int64)
        self.link_type = np.array(
            [LINK_TYPES.index(link["type"]) for link in mailing.links] or [0], dtype=np.int64
        )
        rec = self.recipients_idx
        directory = Directory(contacts, rec)
        self.recipients = RowSet(contacts, rec, directory=directory, pos=np.arange(n))
        self.opens, self.clicks, self.bounces = _event_rows(
            contacts, rec, it, link_ids, directory, None
        )
        # Commerce outcomes of clicks, for the statistics endpoint.
        kinds = self.link_type[it.click_link]
        webshop = kinds == LINK_TYPES.index("webshop")
        conversion = kinds == LINK_TYPES.index("conversion")
        self.cart = webshop & (rng.random(len(kinds)) < 0.25)
        self.converted = (self.cart & (rng.random(len(kinds)) < 0.4)) | (
            conversion & (rng.random(len(kinds)) < 0.3)
        )
        euros = rng.lognormal(4.0, 0.6, len(kinds))
        self.cents = np.where(self.converted, np.round(euros * 100), 0).astype(np.int64)
        self.click_kind = kinds

    def position(self, contact: int) -> int | None:
        i = int(np.searchsorted(self.recipients_idx, contact))
        if i < len(self.recipients_idx) and self.recipients_idx[i] == contact:
            return i
        return None

    def statistics(self, mailing: Mailing, now: int) -> dict[str, Any]:
        it = self.it
        if not mailing.sent(now):
            n = 0
            hard = soft = opened = rendered = clicked = 0
        else:
            n = mailing.audience
            visible_bounce = it.bounce_ts <= now
            hard = int(np.count_nonzero(visible_bounce & it.bounce_hard))
            soft = int(np.count_nonzero(visible_bounce & ~it.bounce_hard))
            opened_mask = it.first_open <= now
            opened = int(np.count_nonzero(opened_mask))
            rendered = int(np.count_nonzero(opened_mask & it.rendered))
            clicked = int(np.count_nonzero(it.first_click <= now))
        k = self.clicks.visible(now) if n else 0
        pos, kinds = it.click_pos[:k], self.click_kind[:k]

        def unique_clickers(mask: np.ndarray) -> int:
            return len(np.unique(pos[mask]))

        stats = {
            "sentCount": n,
            "acceptedCount": n - hard - soft,
            "openCount": opened,
            "openRenderedCount": rendered,
            "clickCount": clicked,
            "hardbounceCount": hard,
            "softbounceCount": soft,
            "notRetainedAfterBounceCount": hard,
            "conversionClickCount": unique_clickers(kinds == LINK_TYPES.index("conversion")),
            "unsubscribeCount": unique_clickers(kinds == LINK_TYPES.index("unsubscribe")),
            "toWebshopCount": unique_clickers(kinds == LINK_TYPES.index("webshop")),
            "shoppingcartCreatedCount": unique_clickers(self.cart[:k]),
            "shoppingcartConvertedCount": unique_clickers(self.converted[:k]),
            "conversionValue": int(self.cents[:k].sum()),  # int64, in cents
        }
        if "ecommerce" in mailing.omit:  # an account without Spotler eCommerce: unknown
            for key in ECOMMERCE_STATISTICS:
                del stats[key]
        return stats


@dataclass(eq=False)
class CampaignMailing:
    """One message step of a campaign (endpoints 17-24)."""

    encrypted_id: str
    name: str
    type: str
    message: dict
    links: list[dict]
    campaign: Campaign
    position: int
    delay: float  # hours after subscription
    continue_rate: float  # chance a subscription reaches this step from the previous one
    omit: frozenset[str] = frozenset()  # optional fields it leaves out (see the module doc)

    def listing(self) -> dict[str, Any]:
        return {"encryptedId": self.encrypted_id, "name": self.name, "type": self.type}

    def detail(self) -> dict[str, Any]:
        return {**self.listing(), **_content(self.message, self.links, self.omit)}


@dataclass(eq=False)
class Campaign:
    index: int
    encrypted_id: str
    name: str
    active: bool
    triggers: list[dict]
    rate: float  # subscriptions per day at scale 1.0
    repeaters: bool  # draws from a small contact group, so contacts pass many times
    running: tuple[date, date] | None = None  # days it took subscriptions (None: always)
    steps: list[CampaignMailing] = field(default_factory=list)  # as listed (deletable)
    all_steps: tuple[CampaignMailing, ...] = ()  # every step ever: what the data is drawn for
    data: CampaignData | None = field(default=None, repr=False)

    def listing(self) -> dict[str, Any]:
        listed: dict[str, Any] = {
            "encryptedId": self.encrypted_id,
            "name": self.name,
            "active": self.active,
        }
        if self.triggers:
            listed["triggers"] = self.triggers
        return listed


class StepData:
    """Sends and interactions of one campaign mailing, time-ordered."""

    def __init__(self, contacts: Contacts, rec_contact, rec_sub, rec_ts, it: Interactions, links):
        self.rec_contact, self.rec_sub, self.rec_ts, self.it = rec_contact, rec_sub, rec_ts, it
        link_ids = np.array([link["id"] for link in links] or [0], dtype=np.int64)
        d = Directory(contacts, rec_contact)
        self.recipients = RowSet(
            contacts,
            rec_contact,
            rec_ts,
            "sendDate",
            sub=rec_sub,
            directory=d,
            pos=np.arange(len(rec_contact)),
        )
        self.opens, self.clicks, self.bounces = _event_rows(
            contacts, rec_contact, it, link_ids, d, rec_sub
        )


class CampaignData:
    """Subscriptions of a campaign and what each step sent them, drawn day by day.

    A day's subscriptions (count, start times, contacts, ids) and the sends and interactions
    they lead to come from one RNG stream seeded by ``(seed, campaign, day)``: the steps'
    rows are the days' parts merged in time order, so they depend on the days covered only.
    """

    def __init__(self, campaign: Campaign, account: Account) -> None:
        seed, pool = account.seed, account.base_pool
        first, last = account.event_first_day, account.event_last_day
        if campaign.running is not None:
            first, last = max(first, campaign.running[0]), min(last, campaign.running[1])
        daily = max(campaign.rate * account.scale, 0.05)  # a floor for tiny test accounts
        group = None
        if campaign.repeaters:  # a fixed group per campaign: its contacts pass many times
            size = max(2, min(pool, round(daily * 20)))
            group = _rng(seed, 3, campaign.index).choice(pool, size, replace=False)
        steps = campaign.all_steps
        parts: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray, Interactions]]] = {
            step.encrypted_id: [] for step in steps
        }
        for day in _days(first, last):
            rng = _rng(seed, 3, campaign.index, day.toordinal())
            count = int(rng.poisson(daily))
            if not count:
                continue
            starts = _times_in_day(rng, day, count)
            if group is not None:
                who = group[rng.integers(0, len(group), count)]
            else:
                who = rng.integers(0, pool, count)
            who = who.astype(np.int64)
            sub_ids = _day_ids(campaign.index + 1, day, count)
            reached = np.ones(count, dtype=bool)
            for step in steps:
                if step.position:
                    reached &= rng.random(count) < step.continue_rate
                subs = np.flatnonzero(reached)
                ts = starts[subs] + int(step.delay * HOUR) + rng.integers(0, 900, len(subs))
                email = step.type == "EMAIL"
                it = simulate(
                    rng, ts, email, 0.45, 0.2, 0.008 if email else 0.02, _link_weights(step.links)
                )
                parts[step.encrypted_id].append((who[subs], sub_ids[subs], ts, it))
        self.steps: dict[str, StepData] = {}
        for step in steps:
            got = parts[step.encrypted_id]
            contact = np.concatenate([p[0] for p in got] or [np.zeros(0, dtype=np.int64)])
            sub = np.concatenate([p[1] for p in got] or [np.zeros(0, dtype=np.int64)])
            ts = np.concatenate([p[2] for p in got] or [np.zeros(0, dtype=np.int64)])
            order = np.lexsort((sub, ts))
            it = _combine([p[3] for p in got], order)
            self.steps[step.encrypted_id] = StepData(
                account.contacts, contact[order], sub[order], ts[order], it, step.links
            )


@dataclass(eq=False)
class FormField:
    field_id: int
    description: str
    kind: str  # text | email | number | score | choice | multi | date
    options: tuple[str, ...] = ()
    optional: bool = False


@dataclass(eq=False)
class Form:
    index: int
    id: int
    name: str
    sub_type: str
    state: str
    fields: list[FormField]
    rate: float  # submissions per day at scale 1.0
    data: FormData | None = field(default=None, repr=False)

    def listing(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "formSubType": self.sub_type,
            "formState": self.state,
        }


class FormData:
    """Submissions of a form in time order, drawn day by day from ``(seed, form, day)``
    streams; ``formResultId`` is ``(form.index + 1) * 10**8 + days since 2020 * 10**4 + k``."""

    def __init__(self, form: Form, account: Account) -> None:
        ts, contact, completed, test, ids = [], [], [], [], []
        daily = 0.0
        if form.rate:  # a floor keeps tiny test accounts interesting
            daily = max(form.rate * account.scale, 0.05 if form.state == "proof" else 0.5)
        for day in _days(account.event_first_day, account.event_last_day) if daily else ():
            rng = _rng(account.seed, 4, form.index, day.toordinal())
            count = int(rng.poisson(daily))
            if not count:
                continue
            ts.append(_times_in_day(rng, day, count))
            contact.append(rng.integers(0, account.base_pool, count))
            completed.append(rng.random(count) < 0.85)
            is_test = rng.random(count) < 0.03
            test.append(np.full(count, True) if form.state == "proof" else is_test)
            ids.append(_day_ids(form.index + 1, day, count))

        def cat(arrays: list[np.ndarray], dtype: type) -> np.ndarray:
            return np.concatenate(arrays).astype(dtype) if arrays else np.zeros(0, dtype=dtype)

        self.ts = cat(ts, np.int64)
        self.contact = cat(contact, np.int64)
        self.completed = cat(completed, bool)
        self.test = cat(test, bool)
        self.result_ids = cat(ids, np.int64)

    def index_of(self, form: Form, result_id: int) -> int | None:
        k = int(np.searchsorted(self.result_ids, result_id))
        return k if k < len(self.result_ids) and self.result_ids[k] == result_id else None


FORM_SPECS = (  # (id, name, formSubType, formState, submissions per day at scale 1, fields)
    (2101, "Inschrijven nieuwsbrief", "subscribe", "final", 40.0, (
        ("E-mailadres", "email", (), False), ("Voornaam", "text", (), True),
        ("Interesses", "multi", ("Dames", "Heren", "Kinderen", "Sport", "Wonen"), True),
    )),
    (2102, "Afmelden nieuwsbrief", "unSubscribe", "final", 15.0, (
        ("Reden", "choice", ("Te veel e-mails", "Niet relevant", "Nooit aangemeld", "Anders"),
         False),
        ("Toelichting", "text", (), True),
    )),
    (2103, "Profiel wijzigen", "editProfile", "final", 10.0, (
        ("Voornaam", "text", (), False), ("Geboortedatum", "date", (), True),
        ("Voorkeuren", "multi", ("E-mail", "SMS", "Post"), True),
    )),
    (2104, "Klanttevredenheid", "normal", "final", 25.0, (
        ("Hoe waarschijnlijk is het dat u ons aanbeveelt?", "score", (), False),
        ("Tevreden over de levering?", "choice", ("Ja", "Nee", "Weet niet"), False),
        ("Aantal bestellingen dit jaar", "number", (), True),
        ("Opmerkingen", "text", (), True),
    )),
    (2105, "Productfeedback", "normal", "proof", 1.0, (
        ("Welk product?", "text", (), False), ("Cijfer", "score", (), False),
    )),
    (2106, "Eventaanmelding", "normal", "draft", 0.0, (("Naam", "text", (), False),)),
    (2107, "Winactie zomer", "normal", "final", 20.0, (
        ("Hoeveel ballen zitten er in de pot?", "number", (), False),
        ("Naam", "text", (), False),
    )),
    (2108, "Inschrijven SMS-alerts", "subscribe", "draft", 0.0, (
        ("Mobiel nummer", "text", (), False),
    )),
    (2109, "Afmelden SMS", "unSubscribe", "proof", 0.5, (("Mobiel nummer", "text", (), False),)),
    (2110, "Voorkeurencentrum", "editProfile", "draft", 0.0, (
        ("Frequentie", "choice", ("Wekelijks", "Maandelijks"), False),
    )),
)  # fmt: skip

#: The days an inactive campaign took subscriptions (its steps have no sends after that).
INACTIVE_CAMPAIGN_RAN = (date(2024, 6, 1), date(2024, 8, 31))

CAMPAIGN_SPECS = (  # (name, active, triggers, per day, repeaters, [(step, type, hours, continue)])
    ("Welkomstreeks", True, ("Inschrijving nieuwsbrief", "Account aangemaakt"), 120.0, False, (
        ("Welkom bij ons!", "EMAIL", 0.05, 1.0), ("Ontdek ons assortiment", "EMAIL", 48, 0.9),
        ("Je eerste korting", "EMAIL", 168, 0.85),
    )),
    ("Verlaten winkelwagen", True, ("Winkelwagen verlaten",), 200.0, True, (
        ("Je vergat iets", "EMAIL", 1, 1.0), ("Herinnering winkelwagen", "SMS", 24, 0.6),
        ("Laatste kans op je winkelwagen", "EMAIL", 72, 0.7),
    )),
    ("Verjaardag", True, (), 60.0, False, (  # started by the birthday date: no trigger
        ("Gefeliciteerd!", "EMAIL", 0.0, 1.0), ("Verjaardagscadeau", "SMS", 0.5, 0.8),
    )),
    ("Heractivatie", True, ("Inactief 180 dagen",), 80.0, False, (
        ("We missen je", "EMAIL", 0.0, 1.0), ("Speciaal voor jou", "EMAIL", 120, 0.9),
        ("Blijf je ingeschreven?", "EMAIL", 240, 0.9),
    )),
    ("Na aankoop", True, ("Order afgeleverd", "Retour verwerkt"), 150.0, True, (
        ("Hoe bevalt je aankoop?", "EMAIL", 72, 1.0), ("Schrijf een review", "EMAIL", 168, 0.8),
    )),
    ("Zomeractie 2024", False, ("Zomeractie aanmelding",), 50.0, False, (
        ("Zomeractie bevestiging", "EMAIL", 0.0, 1.0), ("Zomeractie herinnering", "SMS", 96, 0.8),
    )),
)  # fmt: skip


def _outcome(it: Interactions, i: int, now: int) -> dict[str, Any]:
    """What a contact's history says of recipient ``i`` of a message, as of ``now``."""
    outcome: dict[str, Any] = {
        "opened": bool(it.first_open[i] <= now),
        "clicked": bool(it.first_click[i] <= now),
    }
    if it.bounce_ts[i] <= now:  # else no ``bounce`` at all: optional, absent rather than null
        outcome["bounce"] = "HARDBOUNCE" if it.bounce_hard[i] else "SOFTBOUNCE"
    return outcome


def _in_order(rows: list[tuple[int, int, dict[str, Any]]]) -> list[dict[str, Any]]:
    """History rows by time, then id: ``rows`` holds ``(epoch seconds, id, row)``."""
    return [row for *_, row in sorted(rows, key=lambda r: (r[0], r[1]))]


class Account:
    """The whole generated account (see the module docstring)."""

    def __init__(
        self,
        seed: int,
        scale: float,
        anchor_day: date,
        days: int,
        heavy_days: dict[date, int] | None = None,
        contract_exact: bool = False,
    ) -> None:
        self.seed, self.scale, self.days = seed, scale, days
        self.contract_exact = contract_exact
        self.anchor_day = anchor_day
        self.first_day = anchor_day - timedelta(days=days)
        self.last_day = anchor_day + timedelta(days=FUTURE_DAYS)
        self.event_first_day = self.first_day - timedelta(days=CAMPAIGN_LEAD_DAYS)
        self.event_last_day = anchor_day + timedelta(days=EVENT_FUTURE_DAYS)
        self.anchor_ts = local_midnight(anchor_day)
        self.first_ts = local_midnight(self.first_day)
        self.base_pool = max(20, round(BASE_POOL * scale))
        heavy_days = dict(heavy_days or {})
        self.heavy_audience = {
            day: max(1, round(rows / HEAVY_ROWS_PER_RECIPIENT)) for day, rows in heavy_days.items()
        }
        self.contacts = Contacts(seed, max([self.base_pool, *self.heavy_audience.values()]))
        self._lock = threading.RLock()
        self.mailings = self._make_mailings()
        self.mailings_by_id = {m.encrypted_id: m for m in self.mailings}
        self.campaigns = self._make_campaigns()
        self.campaigns_by_id = {c.encrypted_id: c for c in self.campaigns}
        self.campaign_mailings_by_id = {s.encrypted_id: s for c in self.campaigns for s in c.steps}
        self.forms = self._make_forms()
        self.forms_by_id = {f.id: f for f in self.forms}

    # -- skeleton ------------------------------------------------------------------------

    def _message(self, rng, name: str, email: bool, subject: str | None) -> dict:
        return {
            "name": name,
            "author": SENDERS[int(rng.integers(len(SENDERS)))],
            "subject": subject if email else None,
            "fromName": "Example Shop",
            "fromEmail": "nieuws@example-shop.nl",
        }

    def _make_mailings(self) -> list[Mailing]:
        days = {*_days(self.first_day, self.last_day), *self.heavy_audience}
        mailings = [m for day in sorted(days) for m in self.day_mailings(day)]
        mailings.sort(key=lambda m: (m.send_ts, m.index))
        return mailings

    def day_mailings(self, day: date) -> list[Mailing]:
        """The mailings sent on ``day`` (in send order): a function of (seed, scale, day) and
        of whether ``day`` is a heavy day, never of the window the account covers."""
        rng = _rng(self.seed, 1, day.toordinal())
        slots = np.array([w for *_, w in SEND_SLOTS])
        if day.weekday() < 5:
            count = int(rng.choice([0, 1, 1, 2, 2, 3, 4]))
        else:
            count = int(rng.choice([0, 0, 1]))
        plan: list[tuple[int, bool]] = []  # (send_ts, sms)
        for _ in range(count):
            h, m, s, _w = SEND_SLOTS[int(rng.choice(len(SEND_SLOTS), p=slots / slots.sum()))]
            plan.append((_wall_clock(day, h, m, s), bool(rng.random() < 0.12)))
        plan.sort(key=lambda p: p[0])
        mailings = [
            self._mailing(day, rank, send_ts, sms, None) for rank, (send_ts, sms) in enumerate(plan)
        ]
        if day in self.heavy_audience:
            heavy = self._mailing(
                day, HEAVY_SLOT, _wall_clock(day, 10), False, self.heavy_audience[day]
            )
            mailings = sorted([*mailings, heavy], key=lambda m: (m.send_ts, m.index))
        return mailings

    def _mailing(self, day: date, rank: int, send_ts: int, sms: bool, heavy: int | None) -> Mailing:
        index = day.toordinal() * MAILING_SLOTS + rank
        encrypted_id = opaque_ids(self.seed, 2, np.array([index]))[0]
        r = _rng(self.seed, 5, index)
        week = day.isocalendar().week
        if sms:
            name = SMS_TOPICS[int(r.integers(len(SMS_TOPICS)))]
        else:
            topic = MAILING_TOPICS[int(r.integers(len(MAILING_TOPICS)))]
            name = topic.format(week=week, pct=int(r.choice([10, 15, 20, 25])))
        if heavy is not None:
            name, group, audience = "Jaarlijkse mega-actie", "Alle contacten", heavy
        else:
            group, fraction = TARGET_GROUPS[int(r.integers(len(TARGET_GROUPS)))]
            audience = max(1, round(self.base_pool * fraction * r.uniform(0.85, 1.0)))
        email = not sms
        return Mailing(
            index=index,
            encrypted_id=encrypted_id,
            name=f"{name} ({day.isoformat()})",
            type="SMS" if sms else "EMAIL",
            send_ts=send_ts,
            audience=audience,
            target_group=group,
            sender=SENDERS[int(r.integers(len(SENDERS)))],
            message=self._message(r, name, email, f"{name} 🎉" if email else None),
            archive_link=f"https://archive.mailplus.nl/m/{encrypted_id}",
            links=_links(r, 1_000_000 + index * 100, f"m{index}", email),
            open_rate=0.32 if heavy else float(r.uniform(0.2, 0.4)),
            click_rate=0.12 if heavy else float(r.uniform(0.08, 0.2)),
            bounce_rate=(0.01 if email else 0.02) * (1.0 if heavy else r.uniform(0.7, 1.3)),
            heavy=heavy is not None,
            pool=self.contacts.size if heavy is not None else self.base_pool,
            omit=optional_fields(_rng(self.seed, 10, index), email, self.contract_exact),
        )

    def _make_campaigns(self) -> list[Campaign]:
        """The campaigns and their steps: a function of the seed alone."""
        campaigns = []
        step_ids = iter(opaque_ids(self.seed, 4, np.arange(100)))
        campaign_ids = opaque_ids(self.seed, 3, np.arange(len(CAMPAIGN_SPECS)))
        trigger_ids = iter(opaque_ids(self.seed, 6, np.arange(100)))
        for index, (name, active, triggers, rate, repeaters, steps) in enumerate(CAMPAIGN_SPECS):
            r = _rng(self.seed, 6, index)
            campaign = Campaign(
                index=index,
                encrypted_id=campaign_ids[index],
                name=name,
                active=active,
                triggers=[{"encryptedId": next(trigger_ids), "name": t} for t in triggers],
                rate=rate,
                repeaters=repeaters,
                running=None if active else INACTIVE_CAMPAIGN_RAN,
            )
            for position, (step_name, kind, hours, cont) in enumerate(steps):
                email = kind == "EMAIL"
                campaign.steps.append(
                    CampaignMailing(
                        encrypted_id=next(step_ids),
                        name=step_name,
                        type=kind,
                        message=self._message(r, step_name, email, step_name),
                        links=_links(
                            r, 9_000_000 + index * 1000 + position * 100, f"c{index}", email
                        ),
                        campaign=campaign,
                        position=position,
                        delay=hours,
                        continue_rate=cont,
                        omit=optional_fields(
                            _rng(self.seed, 11, index, position), email, self.contract_exact
                        ),
                    )
                )
            campaign.all_steps = tuple(campaign.steps)
            campaigns.append(campaign)
        return campaigns

    def _make_forms(self) -> list[Form]:
        forms = []
        for index, (form_id, name, sub_type, state, rate, fields) in enumerate(FORM_SPECS):
            forms.append(
                Form(
                    index=index,
                    id=form_id,
                    name=name,
                    sub_type=sub_type,
                    state=state,
                    fields=[
                        FormField(form_id * 10 + rank, desc, kind, tuple(opts), optional)
                        for rank, (desc, kind, opts, optional) in enumerate(fields, start=1)
                    ],
                    rate=rate,
                )
            )
        return forms

    # -- lazily generated data -----------------------------------------------------------

    def _generated(self, item: Mailing | Campaign | Form, generate: Callable[[], Any]) -> Any:
        """``item.data``, generated on first use (once, whichever thread asks first)."""
        if item.data is None:
            with self._lock:
                if item.data is None:
                    item.data = generate()
        return item.data

    def mailing_data(self, mailing: Mailing) -> MailingData:
        return self._generated(mailing, lambda: MailingData(mailing, self.contacts, self.seed))

    def campaign_data(self, campaign: Campaign) -> CampaignData:
        return self._generated(campaign, lambda: CampaignData(campaign, self))

    def step_data(self, step: CampaignMailing) -> StepData:
        return self.campaign_data(step.campaign).steps[step.encrypted_id]

    def form_data(self, form: Form) -> FormData:
        return self._generated(form, lambda: FormData(form, self))

    # -- rendered answers ----------------------------------------------------------------

    def form_result(self, form: Form, k: int) -> dict[str, Any]:
        data = self.form_data(form)
        rng = _rng(self.seed, 9, form.id, int(data.result_ids[k]))
        completed = bool(data.completed[k])
        cut = len(form.fields) if completed else int(rng.integers(0, len(form.fields)))
        answers = []
        for rank, f in enumerate(form.fields, start=1):
            # FormElementResult.answer is an array of strings: one element for an open or
            # scale question, several for multiple choice, none when unanswered.
            answer: list[str]
            if rank > cut or (f.optional and rng.random() < 0.2):
                answer = []
            elif f.kind == "email":
                address = self.contacts.external_ids(np.array([data.contact[k]]))[0]
                answer = [address] if address else []
            elif f.kind == "text":
                answer = [str(rng.choice(FREE_TEXT))]
            elif f.kind == "number":
                answer = [str(int(rng.integers(0, 500)))]
            elif f.kind == "score":
                answer = [str(int(rng.integers(0, 11)))]
            elif f.kind == "date":
                born = date(1950, 1, 1) + timedelta(days=int(rng.integers(0, 18_000)))
                answer = [born.isoformat()]
            elif f.kind == "choice":
                answer = [str(rng.choice(f.options))]
            else:  # multi
                picked = rng.random(len(f.options)) < 0.4
                answer = [o for o, p in zip(f.options, picked, strict=True) if p] or [f.options[0]]
            element: dict[str, Any] = {
                "rank": rank,
                "fieldId": f.field_id,
                "description": f.description,
                "answer": answer,
            }
            if not answer and self.contract_exact:
                del element["answer"]
            answers.append(element)
        result: dict[str, Any] = {
            "formResultId": int(data.result_ids[k]),
            "submittedAt": format_one(int(data.ts[k])),
            "testResult": bool(data.test[k]),
            "completed": completed,
        }
        if cut:  # a submission that answered nothing has no answers at all
            result["answers"] = answers
        return result

    # -- contact histories (endpoints 10-12) ---------------------------------------------

    def mailing_history(self, contact: int, now: int) -> list[dict[str, Any]]:
        out = []
        for mailing in self.mailings:
            if not mailing.sent(now):
                break
            if not self.fetchable(mailing):
                continue
            data = self.mailing_data(mailing)
            i = data.position(contact)
            if i is None:
                continue
            out.append(
                {
                    "mailing": mailing.listing(now),
                    "sentDate": format_one(mailing.send_ts),
                    **_outcome(data.it, i, now),
                }
            )
        return out

    def campaign_history(self, contact: int, now: int) -> list[dict[str, Any]]:
        out: list[tuple[int, int, dict[str, Any]]] = []
        for campaign in self.campaigns:
            for step in self.live_steps(campaign):
                data = self.step_data(step)
                for i in np.flatnonzero((data.rec_contact == contact) & (data.rec_ts <= now)):
                    row = {
                        "campaignMailing": step.listing(),
                        "campaignSubscriptionId": int(data.rec_sub[i]),
                        "sentDate": format_one(int(data.rec_ts[i])),
                        **_outcome(data.it, i, now),
                    }
                    out.append((int(data.rec_ts[i]), row["campaignSubscriptionId"], row))
        return _in_order(out)

    def form_history(self, contact: int, now: int) -> list[dict[str, Any]]:
        out: list[tuple[int, int, dict[str, Any]]] = []
        for form in self.live_forms():
            data = self.form_data(form)
            for k in np.flatnonzero((data.contact == contact) & (data.ts <= now)):
                row = {
                    "form": form.listing(),
                    "formResultId": int(data.result_ids[k]),
                    "submitDate": format_one(int(data.ts[k])),
                    "completed": bool(data.completed[k]),
                }
                out.append((int(data.ts[k]), row["formResultId"], row))
        return _in_order(out)

    # -- deletions upstream --------------------------------------------------------------

    def fetchable(self, mailing: Mailing) -> bool:
        """Whether the mailing's details, statistics and rows are served (not deleted)."""
        return self.mailings_by_id.get(mailing.encrypted_id) is mailing

    def live_steps(self, campaign: Campaign) -> list[CampaignMailing]:
        """The campaign's listed steps that are not deleted."""
        by_id = self.campaign_mailings_by_id
        return [s for s in campaign.steps if by_id.get(s.encrypted_id) is s]

    def live_forms(self) -> list[Form]:
        """The listed forms that are not deleted."""
        return [f for f in self.forms if self.forms_by_id.get(f.id) is f]

    def delete_mailing(self, encrypted_id: str, keep_listed: bool = False) -> Mailing:
        """Delete a mailing upstream: every endpoint about it answers 404 MAILING_NOTFOUND
        and contact histories drop it; it leaves ``/mailing`` unless ``keep_listed`` (a
        mailing deleted between the listing and the fetch). ``KeyError`` if unknown."""
        with self._lock:
            mailing = self.mailings_by_id.pop(encrypted_id, None)
            listed = next((m for m in self.mailings if m.encrypted_id == encrypted_id), None)
            if mailing is None and listed is None:
                raise KeyError(f"no mailing {encrypted_id!r}")
            if not keep_listed and listed is not None:
                self.mailings = [m for m in self.mailings if m is not listed]
            return mailing if mailing is not None else listed

    def delete_campaign_mailing(
        self, encrypted_id: str, keep_listed: bool = False
    ) -> CampaignMailing:
        """Delete a campaign message step upstream: ``/campaign-mailing/{id}`` and its rows
        answer 404 CAMPAIGN_NOTFOUND and contact histories drop it; it leaves
        ``/campaign/{campaign}/mailing`` unless ``keep_listed``. The other steps' data is
        unchanged. ``KeyError`` if unknown."""
        with self._lock:
            step = self.campaign_mailings_by_id.pop(encrypted_id, None)
            listed = next(
                (s for c in self.campaigns for s in c.steps if s.encrypted_id == encrypted_id),
                None,
            )
            if step is None and listed is None:
                raise KeyError(f"no campaign mailing {encrypted_id!r}")
            if not keep_listed and listed is not None:
                campaign = listed.campaign
                campaign.steps = [s for s in campaign.steps if s is not listed]
            return step if step is not None else listed

    def delete_form(self, form_id: int, keep_listed: bool = False) -> Form:
        """Delete a form upstream: its results answer 404 FORM_NOT_FOUND and contact
        histories drop it; it leaves ``/form/list`` unless ``keep_listed``. ``KeyError`` if
        unknown."""
        with self._lock:
            form = self.forms_by_id.pop(form_id, None)
            listed = next((f for f in self.forms if f.id == form_id), None)
            if form is None and listed is None:
                raise KeyError(f"no form {form_id!r}")
            if not keep_listed and listed is not None:
                self.forms = [f for f in self.forms if f is not listed]
            return form if form is not None else listed

    # -- bulk helpers --------------------------------------------------------------------

    def sent_mailings(self, start: int, end: int, now: int) -> list[Mailing]:
        """Mailings sent by ``now`` with ``start <= scheduledStartDate <= end``."""
        return [m for m in self.mailings if start <= m.send_ts <= end and m.sent(now)]

    def row_sets(self) -> list[RowSet]:
        """Every interaction row set (generates all data; used to pre-warm)."""
        sets = []
        for mailing in self.mailings:
            d = self.mailing_data(mailing)
            sets += [d.recipients, d.opens, d.clicks, d.bounces]
        for campaign in self.campaigns:
            for step in campaign.steps:
                d = self.step_data(step)
                sets += [d.recipients, d.opens, d.clicks, d.bounces]
        return sets

    def summary(self, now: int) -> dict[str, Any]:
        """Counts visible at ``now``: totals per table, per send/event/submit day.

        Deleted items count nowhere, even one still listed (``keep_listed``): nothing about
        it can be fetched."""
        days: dict[str, dict[str, int]] = {}
        totals: dict[str, int] = {}

        def add(day: str, table: str, n: int) -> None:
            if n:
                days.setdefault(day, {}).setdefault(table, 0)
                days[day][table] += n
                totals[table] = totals.get(table, 0) + n

        def add_by_day(table: str, ts: np.ndarray) -> None:
            ts = ts[ts <= now]
            if len(ts):
                labels, counts = np.unique(
                    np.array([s[:10] for s in format_many(ts)]), return_counts=True
                )
                for label, n in zip(labels.tolist(), counts.tolist(), strict=True):
                    add(label, table, n)

        for m in self.mailings:
            if not m.sent(now) or not self.fetchable(m):
                continue
            day = local_day(m.send_ts).isoformat()
            d = self.mailing_data(m)
            add(day, "mailings", 1)
            add(day, "mailing_links", len(m.links))
            add(day, "mailing_recipients", len(d.recipients))
            add(day, "mailing_opens", d.opens.visible(now))
            add(day, "mailing_clicks", d.clicks.visible(now))
            add(day, "mailing_bounces", d.bounces.visible(now))
        for table in ("mailing_recipients", "mailing_opens", "mailing_clicks", "mailing_bounces"):
            totals.setdefault(table, 0)
        mailing_tables = (
            "mailing_recipients",
            "mailing_opens",
            "mailing_clicks",
            "mailing_bounces",
        )
        for row in days.values():
            row["mailing_interactions"] = sum(row.get(t, 0) for t in mailing_tables)
        for c in self.campaigns:
            for step in self.live_steps(c):
                d = self.step_data(step)
                add_by_day("campaign_mailing_recipients", d.recipients.ts)
                add_by_day("campaign_mailing_opens", d.opens.ts)
                add_by_day("campaign_mailing_clicks", d.clicks.ts)
                add_by_day("campaign_mailing_bounces", d.bounces.ts)
        for form in self.live_forms():
            add_by_day("form_results", self.form_data(form).ts)
        totals["campaigns"] = len(self.campaigns)
        totals["campaign_mailings"] = len(self.campaign_mailings_by_id)
        totals["forms"] = len(self.live_forms())
        return {
            "now": format_one(now),
            "tables": totals,
            "days": dict(sorted(days.items())),
        }
