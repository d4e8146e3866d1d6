"""Every endpoint's request and typed answer; tolerant parsing; records vs. Arrow batches."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from spotler_pipeline.client import (
    BOUNCE_SCHEMA,
    OPEN_SCHEMA,
    TIMESTAMP_TYPE,
    CampaignMailingDetails,
    Click,
    ContactIdentifier,
    Form,
    FormAnswer,
    MailingDetails,
    MailingStatistics,
    MailingSummary,
    Message,
    Open,
    SubscriptionClick,
    SubscriptionOpen,
)
from spotler_pipeline.client.columnar import ArrowPageDecoder
from spotler_pipeline.row_layouts import (
    BOUNCE_LAYOUT,
    CAMPAIGN_BOUNCE_LAYOUT,
    CAMPAIGN_CLICK_LAYOUT,
    CAMPAIGN_OPEN_LAYOUT,
    CAMPAIGN_RECIPIENT_LAYOUT,
    CLICK_LAYOUT,
    OPEN_LAYOUT,
    RECIPIENT_LAYOUT,
)
from spotler_pipeline_tests.test_client_support import (
    PagedResource,
    json_response,
    layout_row,
    make_client,
    query,
    rows_of,
)

AMS = ZoneInfo("Europe/Amsterdam")

FROM, TO = datetime(2024, 5, 1), datetime(2024, 5, 2)
SUMMARY = {
    "encryptedId": "M1",
    "name": "May news",
    "scheduledStartDate": "2024-05-01T09:00:00",
    "type": "EMAIL",
    "archiveLink": "https://arch/M1",
    "sentCount": 1200,
    "brandNewField": {"nested": True},
}
MESSAGE = {
    "name": "msg",
    "author": "ann",
    "subject": "Hi",
    "fromName": "Shop",
    "fromEmail": "s@x.nl",
}
LINKS = [{"id": 17, "name": "home", "url": "https://x", "code": "c", "type": "webshop"}]


def test_mailing_list_and_details():
    sms = {**SUMMARY, "encryptedId": "M2", "type": "SMS", "archiveLink": None}
    details = {
        **SUMMARY,
        "sender": "ann@shop.nl",
        "targetGroup": "All",
        "message": {**MESSAGE, "subject": None},
        "links": LINKS,
    }
    client, fake = make_client(
        {"/mailing": [json_response([SUMMARY, sms])], "/mailing/M1": [json_response(details)]}
    )
    first, second = client.list_mailings(FROM, TO)
    assert first == MailingSummary(
        encrypted_id="M1",
        name="May news",
        scheduled_start_date=datetime(2024, 5, 1, 7, tzinfo=UTC),
        type="EMAIL",
        archive_link="https://arch/M1",
        sent_count=1200,
    )
    assert second.type == "SMS" and second.archive_link is None
    got = client.get_mailing("M1")
    assert isinstance(got, MailingDetails) and isinstance(got, MailingSummary)
    assert got.sender == "ann@shop.nl" and got.target_group == "All"
    assert got.message == Message("msg", "ann", None, "Shop", "s@x.nl")
    assert got.links[0].id == "17" and got.links[0].type == "webshop"


def test_details_tolerate_missing_optional_parts():
    client, _ = make_client({"/mailing/M1": [json_response({"encryptedId": "M1"})]})
    got = client.get_mailing("M1")
    assert got.message is None and got.links == () and got.scheduled_start_date is None


def test_statistics_all_fourteen():
    body = {
        "sentCount": 10,
        "acceptedCount": 9,
        "openCount": 8,
        "openRenderedCount": 7,
        "clickCount": 6,
        "hardbounceCount": 1,
        "softbounceCount": 2,
        "notRetainedAfterBounceCount": 0,
        "conversionClickCount": 3,
        "unsubscribeCount": 1,
        "toWebshopCount": 4,
        "shoppingcartCreatedCount": 2,
        "shoppingcartConvertedCount": 1,
        "conversionValue": 9995,  # cents
    }
    client, _ = make_client({"/mailing/M1/statistics": [json_response(body)]})
    stats = client.get_mailing_statistics("M1")
    assert stats == MailingStatistics(10, 9, 8, 7, 6, 1, 2, 0, 3, 1, 4, 2, 1, 9995)
    client, _ = make_client({"/mailing/M1/statistics": [json_response({"sentCount": 5})]})
    sparse = client.get_mailing_statistics("M1")
    assert sparse.sent_count == 5 and sparse.conversion_value is None and sparse.open_count is None


def test_forms_and_results():
    form = {"id": 3, "name": "Survey", "formSubType": "normal", "formState": "final"}
    result = {
        "formResultId": "R1",
        "submittedAt": "2024-05-01T12:00:00Z",
        "testResult": False,
        "completed": True,
        "answers": [
            {"rank": 1, "fieldId": "f1", "description": "Name", "answer": "Ann"},
            {"rank": 2, "fieldId": "f2", "description": "Score", "answer": 7},
            {"rank": 3, "fieldId": "f3", "description": "Score", "answer": 7.5},
            {"rank": 4, "fieldId": "f4", "description": "Pick", "answer": ["a", "b"]},
            {"rank": 5, "fieldId": "f5", "description": "Skip", "answer": None},
        ],
    }
    client, fake = make_client(
        {
            "/form/list": [json_response([form])],
            "/form/result/3/R1": [json_response(result)],
            "/form/result/3": [json_response([result])],
        }
    )
    assert client.list_forms("normal", "final") == [Form("3", "Survey", "normal", "final")]
    assert query(fake.requests[0]) == {"formSubType": "normal", "formState": "final"}
    single = client.get_form_result("3", "R1")
    assert single.submitted_at == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert [a.answer for a in single.answers] == ["Ann", 7, 7.5, ["a", "b"], None]
    assert single.answers[0] == FormAnswer(1, "f1", "Name", "Ann")
    assert client.list_form_results("3") == [single]
    assert query(fake.requests[2]) == {}


def test_campaigns():
    campaign = {
        "encryptedId": "C1",
        "name": "Welcome",
        "active": True,
        "triggers": [{"encryptedId": "T1", "name": "signup"}],
    }
    step = {"encryptedId": "CM1", "name": "Day 1", "type": "EMAIL"}
    client, _ = make_client(
        {
            "/campaign/list": [json_response([campaign])],
            "/campaign/C1/mailing": [json_response([step])],
            "/campaign-mailing/CM1": [json_response({**step, "message": MESSAGE, "links": LINKS})],
        }
    )
    (got,) = client.list_campaigns()
    assert got.active is True and got.triggers[0].name == "signup"
    (mailing,) = client.list_campaign_mailings("C1")
    assert mailing.type == "EMAIL"
    details = client.get_campaign_mailing("CM1")
    assert isinstance(details, CampaignMailingDetails) and details.message.subject == "Hi"


def test_list_endpoint_answering_a_paged_object():
    client, _ = make_client(
        {"/campaign/list": [json_response({"campaigns": [{"name": "x"}], "paging": {}})]}
    )
    assert [c.name for c in client.list_campaigns()] == ["x"]


def test_contact_histories():
    mailing_history = {
        "mailing": SUMMARY,
        "sentDate": "2024-05-01T09:00:00",
        "opened": True,
        "clicked": False,
        "bounce": None,
    }
    form_history = {
        "form": {"id": "F", "name": "n"},
        "formResultId": 9,
        "submitDate": "2024-05-02T09:00:00",
        "completed": True,
    }
    campaign_history = {
        "campaignMailing": {"encryptedId": "CM1", "name": "Day 1", "type": "SMS"},
        "campaignSubscriptionId": 55,
        "sentDate": "2024-05-03T09:00:00+00:00",
        "opened": False,
        "clicked": False,
        "bounce": "SOFTBOUNCE",
    }
    base = "/contact/a%2Bb%40x.nl"
    client, _ = make_client(
        {
            f"{base}/mailings": PagedResource("mailingHistories", [mailing_history]),
            f"{base}/forms": PagedResource("formHistories", [form_history]),
            f"{base}/campaign-mailings": PagedResource(
                "campaignMailingHistories", [campaign_history]
            ),
        }
    )
    (mh,) = client.iter_contact_mailing_history("a+b@x.nl")
    assert mh.mailing.encrypted_id == "M1" and mh.opened is True and mh.bounce is None
    (fh,) = client.iter_contact_form_history("a+b@x.nl")
    assert fh.form.id == "F" and fh.form_result_id == "9" and fh.form.form_state is None
    (ch,) = client.iter_contact_campaign_mailing_history("a+b@x.nl")
    assert ch.campaign_subscription_id == "55" and ch.bounce == "SOFTBOUNCE"
    assert ch.sent_date == datetime(2024, 5, 3, 9, tzinfo=UTC)


def _row(i: int, **extra):
    return {"contactIdentifier": {"externalId": f"c{i}", "encryptedId": f"e{i}"}, **extra}


STREAMS = [
    # (batches method, path, array field, row extras, row layout)
    ("mailing_recipient_batches", "/mailing/M1/recipients", "recipients", {}, RECIPIENT_LAYOUT),
    (
        "mailing_open_batches",
        "/mailing/M1/opens",
        "opens",
        {"openDate": "2024-05-01T10:00:00"},
        OPEN_LAYOUT,
    ),
    (
        "mailing_click_batches",
        "/mailing/M1/clicks",
        "clicks",
        {"clickDate": "2024-05-01T10:00:00", "linkId": "L1"},
        CLICK_LAYOUT,
    ),
    (
        "mailing_bounce_batches",
        "/mailing/M1/bounces",
        "bounces",
        {"bounceDate": "2024-05-01T10:00:00", "type": "HARDBOUNCE"},
        BOUNCE_LAYOUT,
    ),
    (
        "campaign_mailing_recipient_batches",
        "/campaign-mailing/CM1/recipients",
        "recipients",
        {"sendDate": "2024-05-01T10:00:00", "campaignSubscriptionId": "S1"},
        CAMPAIGN_RECIPIENT_LAYOUT,
    ),
    (
        "campaign_mailing_open_batches",
        "/campaign-mailing/CM1/opens",
        "opens",
        {"openDate": "2024-05-01T10:00:00", "campaignSubscriptionId": "S1"},
        CAMPAIGN_OPEN_LAYOUT,
    ),
    (
        "campaign_mailing_click_batches",
        "/campaign-mailing/CM1/clicks",
        "clicks",
        {"clickDate": "2024-05-01T10:00:00", "linkId": "L1", "campaignSubscriptionId": "S1"},
        CAMPAIGN_CLICK_LAYOUT,
    ),
    (
        "campaign_mailing_bounce_batches",
        "/campaign-mailing/CM1/bounces",
        "bounces",
        {"bounceDate": "2024-05-01T10:00:00", "type": "SOFTBOUNCE", "campaignSubscriptionId": "S1"},
        CAMPAIGN_BOUNCE_LAYOUT,
    ),
]


@pytest.mark.parametrize(
    ("batches", "path", "field", "extras", "layout"), STREAMS, ids=[s[0] for s in STREAMS]
)
@pytest.mark.parametrize("numeric_ids", [False, True])
def test_bulk_streams_come_as_batches_of_their_layout(
    batches, path, field, extras, layout, numeric_ids
):
    rows = [_row(i, **extras, unknownField=[i]) for i in range(5)]
    if numeric_ids:
        for i, r in enumerate(rows):
            r["contactIdentifier"]["externalId"] = 1000 + i
            for key in ("linkId", "campaignSubscriptionId"):
                if key in r:
                    r[key] = 7
    args = ("CM1", FROM, TO) if path.startswith("/campaign") else ("M1",)
    client, fake = make_client({path: PagedResource(field, rows)}, page_size=2)
    got_batches = list(getattr(client, batches)(*args))
    assert [b.num_rows for b in got_batches] == [2, 2, 1]
    assert all(b.schema == layout.schema for b in got_batches)
    table = pa.Table.from_batches(got_batches, layout.schema)
    assert table.to_pylist() == [layout_row(layout, r, AMS) for r in rows]
    if numeric_ids:
        assert table.column("contact_external_id").to_pylist()[0] == "1000"
    if path.startswith("/campaign"):
        assert query(fake.requests[0])["fromDate"] == "2024-05-01T00:00:00"


def test_subscription_and_contact_streams():
    """Endpoints 6, 8, 21, 23 answer rows without a contact: the records carry the contact
    or subscription the request named (a stray contact in a row is not taken)."""
    clicks = [{"clickDate": "2024-05-01T10:00:00", "linkId": 3}, _row(2, clickDate=None)]
    opens = [{"openDate": "2024-05-01T10:00:00"}]
    client, fake = make_client(
        {
            "/campaign-mailing/CM1/opens/S%2F1": PagedResource("opens", opens),
            "/campaign-mailing/CM1/clicks/S%2F1": PagedResource("clicks", clicks),
            "/mailing/M1/clicks/x%40y.nl": PagedResource("clicks", clicks),
            "/mailing/M1/opens/x%40y.nl": PagedResource("opens", opens),
        }
    )
    at = datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert list(client.iter_campaign_mailing_subscription_clicks("CM1", "S/1")) == [
        SubscriptionClick("S/1", at, "3"),
        SubscriptionClick("S/1", None, None),
    ]
    assert list(client.iter_campaign_mailing_subscription_opens("CM1", "S/1")) == [
        SubscriptionOpen("S/1", at)
    ]
    asked = ContactIdentifier("x@y.nl", None)
    assert list(client.iter_mailing_contact_clicks("M1", "x@y.nl")) == [
        Click(asked, at, "3"),
        Click(asked, None, None),
    ]
    assert list(client.iter_mailing_contact_opens("M1", "x@y.nl")) == [Open(asked, at)]


def test_interaction_rows_tolerate_nulls():
    rows = [{"contactIdentifier": None, "bounceDate": None}, {}]
    client, _ = make_client({"/mailing/M1/bounces": PagedResource("bounces", rows)})
    (batch,) = client.mailing_bounce_batches("M1")
    assert batch.to_pylist() == [dict.fromkeys(BOUNCE_SCHEMA.names)] * 2


def test_campaign_recipient_send_date():
    rows = [_row(1, sendDate="2024-05-01T10:00:00.5Z", campaignSubscriptionId="S")]
    client, _ = make_client({"/campaign-mailing/CM1/recipients": PagedResource("recipients", rows)})
    (r,) = rows_of(client.campaign_mailing_recipient_batches("CM1", FROM, TO))
    assert r == {
        "contact_external_id": "c1",
        "contact_encrypted_id": "e1",
        "send_date": datetime(2024, 5, 1, 10, 0, 0, 500_000, tzinfo=UTC),
        "campaign_subscription_id": "S",
    }


DECODER_CASES = {
    "strict": (
        b'{"opens":[{"contactIdentifier":{"externalId":"a","encryptedId":"b"},"openDate":"2024-01-01T10:00:00"}],"paging":{"next":"n"}}',
        "strict",
    ),
    "numeric-ids": (
        b'{"opens":[{"contactIdentifier":{"externalId":12,"encryptedId":"b"},"openDate":"2024-01-01T10:00:00"}]}',
        "inferred",
    ),
    "mixed-ids": (
        b'{"opens":[{"contactIdentifier":{"externalId":12}},{"contactIdentifier":{"externalId":"x"}}]}',
        "python",
    ),
    "bare-array": (b'[{"contactIdentifier":{"externalId":"a"}}]', "python"),
    "pretty-printed": (
        b'{\n  "opens": [\n    {\n      "contactIdentifier": {"externalId": "a"}\n    }\n  ]\n}\n',
        "strict",
    ),
}


@pytest.mark.parametrize(("body", "decoder"), DECODER_CASES.values(), ids=DECODER_CASES.keys())
def test_arrow_decoders(body, decoder):
    from zoneinfo import ZoneInfo

    decode = ArrowPageDecoder(
        OPEN_LAYOUT, "opens", "Europe/Amsterdam", ZoneInfo("Europe/Amsterdam")
    )
    page = decode(body)
    assert decode.last_decoder == decoder
    assert page.rows.schema == OPEN_SCHEMA
    assert page.rows.schema.field("open_date").type == TIMESTAMP_TYPE
    assert isinstance(page.rows.column(0).to_pylist()[0], str)
