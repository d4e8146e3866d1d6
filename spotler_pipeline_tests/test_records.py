"""A record field is declared once, in ``spotler_pipeline.records``: the client decodes it from
its JSON key and the warehouse makes its column of it, with no other place naming it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from spotler_pipeline.client.models import decode
from spotler_pipeline.defs.catalogue_rows import row_for
from spotler_pipeline.records import api, fields_of, raw_json, row_values
from spotler_pipeline.warehouse.model import Column, Table, record_columns

AMS = ZoneInfo("Europe/Amsterdam")


@dataclass(frozen=True, slots=True)
class Badge:
    code: str | None = api("badgeCode", "The badge's code.", column="badge_code")
    level: int | None = api("level", "The badge's level.")


@dataclass(frozen=True, slots=True)
class Member:
    member_id: str | None = api("memberId", "Id of the member.")
    visits: int | None = api("visitCount", "Visits so far.", sql_type="INTEGER")
    joined_at: datetime | None = api("joinedAt", "When the member joined.")
    active: bool | None = api("active", "Whether the member is active.")
    badge: Badge | None = api("badge")
    first: Badge | None = api("firstBadge", keep={"code": ("first_code", "The first badge.")})
    badges: tuple[Badge, ...] = api("badges")
    note: object = raw_json("note", "The note as sent.")


#: A table of members: the record's columns between two of the warehouse's own.
MEMBERS = Table(
    "members",
    "One row per member.",
    (
        Column("club_id", "VARCHAR", "The member's club."),
        *record_columns(Member, after={"visits": (Column("visit_band", "VARCHAR", "Band."),)}),
        Column("badge_count", "INTEGER", "Badges held."),
    ),
    ("club_id", "member_id"),
)


def test_a_record_field_is_a_table_column_and_decoded_from_its_json_key() -> None:
    declared = [(c.name, c.type, c.description) for c in MEMBERS.columns[1:-1]]
    assert declared == [
        ("member_id", "VARCHAR", "Id of the member."),
        ("visits", "INTEGER", "Visits so far."),
        ("visit_band", "VARCHAR", "Band."),
        ("joined_at", "TIMESTAMPTZ", "When the member joined."),
        ("active", "BOOLEAN", "Whether the member is active."),
        ("badge_code", "VARCHAR", "The badge's code."),
        ("level", "BIGINT", "The badge's level."),
        ("first_code", "VARCHAR", "The first badge."),
        ("note", "JSON", "The note as sent."),
    ]
    member = decode(
        Member,
        {
            "memberId": 7,
            "visitCount": "3",
            "joinedAt": "2024-05-01T09:00:00",
            "active": 1,
            "badge": {"badgeCode": "gold", "level": 2, "unknown": True},
            "firstBadge": {"badgeCode": "tin"},
            "badges": [{"badgeCode": "gold"}, {"level": 1}],
            "note": ["as", "is"],
            "member_id": "not the JSON key",
        },
        AMS,
    )
    assert member == Member(
        member_id="7",
        visits=3,
        joined_at=datetime(2024, 5, 1, 7, tzinfo=UTC),
        active=True,
        badge=Badge(code="gold", level=2),
        first=Badge(code="tin", level=None),
        badges=(Badge(code="gold", level=None), Badge(code=None, level=1)),
        note=["as", "is"],
    )
    row = row_for(MEMBERS, member, club_id="C1", visit_band="low", badge_count=2)
    assert list(row) == MEMBERS.column_names
    assert row["badge_code"] == "gold" and row["first_code"] == "tin" and row["level"] == 2
    assert row_values(decode(Member, {}, AMS))["badge_code"] is None


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"visitCount": {"n": 3}}, TypeError),
        ({"active": "maybe"}, ValueError),
        ({"badge": ["gold"]}, TypeError),
        ({"badges": {"badgeCode": "gold"}}, TypeError),
    ],
)
def test_a_value_of_the_wrong_kind_is_refused(body: dict, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode(Member, body, AMS)


def test_a_field_without_its_declaration_is_refused() -> None:
    @dataclass(frozen=True)
    class Loose:
        name: str | None = None

    with pytest.raises(TypeError, match=r"Loose\.name is not declared"):
        fields_of(Loose)
    with pytest.raises(KeyError, match="no_such"):
        record_columns(Member, after={"no_such": ()})
