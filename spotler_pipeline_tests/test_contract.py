"""The simulator speaks Spotler's published contract, and our client asks only what it allows.

Every GET endpoint the simulator serves is walked (faults off, a small account) and every
answer validated against the model the contract names for its operation; optional fields
are really optional (absent in some rows). The other way round, every request the client
makes, one of each of its methods, names only the operation's parameters, the required ones
present, each in its documented format; and the simulator refuses what the contract does
not allow with 400 ``INVALID_PARAMS``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import jsonschema
import numpy as np
import orjson
import pytest

from spotler_pipeline.client import ClientSettings, SpotlerClient
from spotler_pipeline.client.actions import trigger_campaign, update_contact
from spotler_pipeline.simulator import Simulator
from spotler_pipeline.simulator._api import PREFIX
from spotler_pipeline.simulator._time import ACCOUNT_TZ
from spotler_pipeline.simulator._writes import OPT_OUT_EVERY
from spotler_pipeline.simulator.testing import SignedSession, segment
from spotler_pipeline_tests import contract
from spotler_pipeline_tests.simulators import simulator_client

NOW = datetime(2025, 5, 5, 12, 0, tzinfo=ACCOUNT_TZ)
START, END = NOW - timedelta(days=12), NOW
RANGE = {"fromDate": f"{START:%Y-%m-%dT%H:%M:%S}", "toDate": f"{END:%Y-%m-%dT%H:%M:%S}"}

#: Optional fields the pipeline reads, each absent in some rows (model, property).
OPTIONAL_READ = [
    ("ContactIdentifier", "externalId"),
    ("Mailing", "archiveLink"),
    ("MailingDetails", "archiveLink"),
    ("MailingDetails", "links"),
    ("Message", "subject"),
    ("Message", "fromEmail"),
    ("MailingLink", "code"),
    ("MailingLink", "type"),
    ("Campaign", "triggers"),
    ("CampaignMailingDetails", "links"),
    ("MailingStats", "toWebshopCount"),
    ("MailingStats", "shoppingcartCreatedCount"),
    ("MailingStats", "shoppingcartConvertedCount"),
    ("MailingStats", "conversionValue"),
    ("FormResult", "answers"),
    ("MailingHistory", "bounce"),
    ("CampaignMailingHistory", "bounce"),
]


@pytest.fixture(scope="module", params=[False, True], ids=["default", "contract_exact"])
def simulator(request: pytest.FixtureRequest) -> Iterator[Simulator]:
    with Simulator(seed=5, scale=0.003, now=NOW, days=12, contract_exact=request.param) as sim:
        yield sim


class Walker:
    """GETs every endpoint of the simulator, validating each answer against its model and
    tallying which optional fields each object had."""

    def __init__(self, api: SignedSession) -> None:
        self.api = api
        self.tally: dict[tuple[str, str], list[int]] = {}
        self.operations: Counter[str] = Counter()

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        response = self.api.get(path, params)
        assert response.status_code == 200, (path, response.text[:300])
        body = response.json()
        op = contract.operation("GET", path)
        model, is_array = op.response_model()
        for item in body if is_array else [body]:
            contract.validate(model, item)
            contract.field_presence(model, item, self.tally)
        self.operations[op.path] += 1
        return body

    def pages(self, path: str, array: str, params: dict[str, Any] | None = None) -> list[Any]:
        rows: list[Any] = []
        after = 0
        while True:
            page = self.get(path, {**(params or {}), "after": after})
            rows += page[array]
            after += len(page[array])
            if not page["paging"].get("next") or not page[array]:
                return rows


def walk(sim: Simulator) -> Walker:  # noqa: C901 - one visit per endpoint, in API order
    with sim.session() as api:
        w = Walker(api)
        contacts: list[str] = []
        for m in w.get("/mailing", RANGE):  # 1
            mid = m["encryptedId"]
            w.get(f"/mailing/{mid}")  # 2
            w.get(f"/mailing/{mid}/statistics")  # 3
            recipients = w.pages(f"/mailing/{mid}/recipients", "recipients")  # 4
            opens = w.pages(f"/mailing/{mid}/opens", "opens")  # 5
            clicks = w.pages(f"/mailing/{mid}/clicks", "clicks")  # 7
            bounces = w.pages(f"/mailing/{mid}/bounces", "bounces")  # 9
            ids = [r["contactIdentifier"].get("externalId") for r in opens + clicks]
            for external_id in [i for i in ids if i][:2]:
                w.pages(f"/mailing/{mid}/opens/{segment(external_id)}", "opens")  # 6
                w.pages(f"/mailing/{mid}/clicks/{segment(external_id)}", "clicks")  # 8
            contacts += [r["contactIdentifier"].get("externalId") for r in bounces[:1]]
            contacts += [r["contactIdentifier"].get("externalId") for r in recipients[:1]]
        for form in w.get("/form/list"):  # 13
            window = {"startDate": f"{START:%Y%m%d}", "endDate": f"{END:%Y%m%d%H%M%S}"}
            results = w.get(f"/form/result/{form['id']}", window)  # 15
            for result in results[:2]:
                w.get(f"/form/result/{form['id']}/{result['formResultId']}")  # 14
        for campaign in w.get("/campaign/list"):  # 16
            for step in w.get(f"/campaign/{campaign['encryptedId']}/mailing"):  # 17
                path = f"/campaign-mailing/{step['encryptedId']}"
                w.get(path)  # 18
                w.pages(f"{path}/recipients", "recipients", RANGE)  # 19
                opens = w.pages(f"{path}/opens", "opens", RANGE)  # 20
                clicks = w.pages(f"{path}/clicks", "clicks", RANGE)  # 22
                bounces = w.pages(f"{path}/bounces", "bounces", RANGE)  # 24
                contacts += [r["contactIdentifier"].get("externalId") for r in bounces[:1]]
                for row in (opens + clicks)[:2]:
                    sub = row["campaignSubscriptionId"]
                    w.pages(f"{path}/opens/{sub}", "opens")  # 21
                    w.pages(f"{path}/clicks/{sub}", "clicks")  # 23
        for external_id in dict.fromkeys(c for c in contacts if c):  # bounced ones among them
            w.pages(f"/contact/{segment(external_id)}/mailings", "mailingHistories")  # 10
            w.pages(f"/contact/{segment(external_id)}/forms", "formHistories", {"pageSize": 5})
            w.pages(
                f"/contact/{segment(external_id)}/campaign-mailings", "campaignMailingHistories"
            )  # 12
        return w


def test_every_answer_matches_the_model_its_operation_names(simulator: Simulator) -> None:
    w = walk(simulator)
    assert len(w.operations) == 24, sorted(w.operations)
    for model, prop in OPTIONAL_READ:
        present, absent = w.tally.get((model, prop), [0, 0])
        assert absent > 0, f"{model}.{prop} is never absent ({present} present)"
    if simulator.account.contract_exact:  # every optional field the data does not need: gone
        for model, prop in [
            ("Mailing", "archiveLink"),
            ("Message", "subject"),
            ("Message", "fromEmail"),
            ("MailingLink", "code"),
            ("MailingLink", "type"),
            ("MailingStats", "conversionValue"),
        ]:
            assert w.tally[(model, prop)][0] == 0, f"{model}.{prop}"
    else:  # ... else present in other rows, so the pipeline is seen to read them
        for model, prop in OPTIONAL_READ:
            assert w.tally[(model, prop)][0] > 0, f"{model}.{prop} is never present"


@pytest.mark.parametrize(
    ("model", "body"),
    [
        ("MailingStats", {"sentCount": 1}),  # required fields missing
        ("MailingOpen", {"contactIdentifier": {"externalId": "x"}, "openDate": "2025-01-01"}),
        (
            "Mailing",
            {
                "encryptedId": "M",
                "name": "n",
                "scheduledStartDate": "2025-01-01T00:00:00",
                "type": "FAX",
                "sentCount": 1,
            },
        ),  # fmt: skip
        ("FormElementResult", {"rank": 1, "fieldId": 2, "description": "d", "answer": "7"}),
        ("FormElementResult", {"rank": 1, "fieldId": 2, "description": "d", "answer": None}),
        ("MailingContactOpenResponse", {"opens": [{"contactIdentifier": {}}]}),
        (
            "MailingStats",
            {
                **dict.fromkeys(contract.models()["MailingStats"]["required"], 0),
                "conversionValue": 12.34,
            },
        ),
        (  # an id beyond the contract's int32, as the simulator's form result ids were
            "FormHistory",
            {
                "form": {"id": 1, "name": "n", "formSubType": "normal", "formState": "final"},
                "formResultId": 210173937200001,
                "submitDate": "2025-01-01T00:00:00",
                "completed": True,
            },
        ),
    ],
)
def test_the_validator_refuses_what_the_contract_does_not_allow(model: str, body: Any) -> None:
    """What the simulator served before it followed the contract is refused, so the walk
    above can fail."""
    with pytest.raises(jsonschema.ValidationError):
        contract.validate(model, body)


def test_the_simulators_copy_is_the_published_contract() -> None:
    if not contract.SHARED_COPY.exists():
        pytest.skip("no shared copy of the contract on this machine")
    assert contract.CONTRACT.read_bytes() == contract.SHARED_COPY.read_bytes()


@pytest.fixture(scope="module")
def default_sim() -> Iterator[Simulator]:
    with Simulator(seed=5, scale=0.003, now=NOW, days=12) as sim:
        yield sim


def _one_of_each(sim: Simulator) -> tuple[str, str, str, str, str]:
    """A sent e-mail mailing, one of its openers, a campaign message, one of its
    subscriptions, and a form with results."""
    now = int(sim.now.timestamp())
    account = sim.account
    mailing = max(
        (m for m in account.mailings if m.sent(now) and m.type == "EMAIL"),
        key=lambda m: m.audience,
    )
    opens = account.mailing_data(mailing).opens
    opener = next(
        e for e in account.contacts.external_ids(opens.contact[: opens.visible(now)]) if e
    )
    step = account.campaigns[0].steps[0]
    subs = account.step_data(step).opens.sub
    assert subs is not None and len(subs)
    form = next(f for f in account.forms if len(account.form_data(f).ts))
    return mailing.encrypted_id, opener, step.encrypted_id, str(int(subs[0])), str(form.id)


def test_every_request_of_the_client_is_one_the_contract_allows(default_sim: Simulator) -> None:
    sim = default_sim
    mailing, contact, step, sub, form = _one_of_each(sim)
    default_sim.reset_log()
    with simulator_client(sim, page_size=50) as client:
        client.list_mailings(START, END)
        client.get_mailing(mailing)
        client.get_mailing_statistics(mailing)
        for kind in ("recipients", "opens", "clicks", "bounces"):
            list(getattr(client, f"mailing_{kind[:-1]}_batches")(mailing))
        list(client.iter_mailing_contact_opens(mailing, contact))
        list(client.iter_mailing_contact_clicks(mailing, contact))
        list(client.iter_contact_mailing_history(contact))
        list(client.iter_contact_form_history(contact))
        list(client.iter_contact_campaign_mailing_history(contact))
        client.list_forms()
        client.list_forms(form_sub_type="normal", form_state="final")
        results = client.list_form_results(form, START, END, completed=True)
        results += client.list_form_results(form)
        client.get_form_result(form, str(results[0].form_result_id))
        for campaign in client.list_campaigns()[:1]:
            client.list_campaign_mailings(str(campaign.encrypted_id))
        client.get_campaign_mailing(step)
        for kind in ("recipients", "opens", "clicks", "bounces"):
            list(getattr(client, f"campaign_mailing_{kind[:-1]}_batches")(step, START, END))
        list(client.iter_campaign_mailing_subscription_opens(step, sub))
        list(client.iter_campaign_mailing_subscription_clicks(step, sub))
    requests = sim.requests
    prefix = sim.base_url.removeprefix(sim.admin_url.removesuffix("/_simulator"))
    problems, seen = [], set()
    for method, path, query, status in requests:
        op = contract.operation(method, path.removeprefix(prefix))
        seen.add(op.path)
        problems += contract.request_problems(op, query)
        assert status == 200, (path, query, status)
    assert problems == []
    assert len(seen) == 24, sorted(seen)


REFUSED = {
    "ISO startDate": ("/form/result/{form}", {"startDate": "2025-05-01T00:00:00"}),
    "ISO endDate": ("/form/result/{form}", {"endDate": "2025-05-01T00:00:00"}),
    "unnamed parameter": ("/form/list", {"pageSize": "10"}),
    "misspelt parameter": ("/mailing/{mailing}/opens", {"pagesize": "10"}),
    "fromDate missing": ("/mailing", {"toDate": "2025-05-01T00:00:00"}),
    "toDate missing": ("/mailing", {"fromDate": "2025-05-01T00:00:00"}),
    "non-ISO fromDate": ("/mailing", {**RANGE, "fromDate": "20250501000000"}),
    "date only": ("/campaign-mailing/{step}/opens", {"fromDate": "2025-05-01"}),
    "non-integer after": ("/mailing/{mailing}/recipients", {"after": "1.5"}),
    "negative after": ("/mailing/{mailing}/recipients", {"after": "-1"}),
    "non-integer pageSize": ("/mailing/{mailing}/recipients", {"pageSize": "ten"}),
    "pageSize over 10000": ("/mailing/{mailing}/recipients", {"pageSize": "10001"}),
    "pageSize 0": ("/mailing/{mailing}/recipients", {"pageSize": "0"}),
    "pageSize on 10": ("/contact/{contact}/mailings", {"pageSize": "50"}),
    "pageSize on 12": ("/contact/{contact}/campaign-mailings", {"pageSize": "50"}),
    "completed not boolean": ("/form/result/{form}", {"completed": "yes"}),
}


@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED.keys())
def test_the_simulator_refuses_what_the_contract_does_not_allow(
    default_sim: Simulator, case: tuple[str, dict[str, str]]
) -> None:
    mailing, contact, step, _sub, form = _one_of_each(default_sim)
    template, params = case
    path = template.format(mailing=mailing, contact=segment(contact), step=step, form=form)
    with default_sim.session() as api:
        response = api.get(path, params)
    assert response.status_code == 400, response.text
    body = response.json()
    contract.validate("ErrorResponse", body)
    assert body["errorType"] == "INVALID_PARAMS" and body["message"]


@pytest.mark.parametrize(
    "params",
    [{"startDate": "20250501", "endDate": "20250505235959"}, {"completed": "false"}, {}],
)
def test_the_simulator_accepts_what_the_contract_documents(
    default_sim: Simulator, params: dict[str, str]
) -> None:
    *_, form = _one_of_each(default_sim)
    with default_sim.session() as api:
        assert api.get(f"/form/result/{form}", params).status_code == 200


# -- the follow-up actions' writes -------------------------------------------------------------


class _Recording(httpx.HTTPTransport):
    """The real transport, keeping each write request and its answer."""

    def __init__(self) -> None:
        super().__init__()
        self.exchanges: list[tuple[httpx.Request, int, bytes]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        body = response.read()
        if request.method != "GET":
            self.exchanges.append((request, response.status_code, body))
        return response


def test_the_writes_and_their_answers_are_as_the_contract_publishes_them() -> None:
    """Each write the follow-up actions send is the operation's body model, and each of the
    simulator's answers is one of the operation's responseMessages with its model."""
    with Simulator(seed=5, scale=0.003, now=NOW, days=3) as sim:
        ids = sim.account.contacts.external_ids(np.arange(400))
        ok = next(c for i, c in enumerate(ids) if c and i % OPT_OUT_EVERY != OPT_OUT_EVERY - 1)
        opted_out = next(
            c for i, c in enumerate(ids) if c and i % OPT_OUT_EVERY == OPT_OUT_EVERY - 1
        )
        active = next(c for c in sim.account.campaigns if c.active and c.triggers)
        inactive = next(c for c in sim.account.campaigns if not c.active and c.triggers)
        trigger, stopped = active.triggers[0]["encryptedId"], inactive.triggers[0]["encryptedId"]
        settings = ClientSettings(sim.consumer_key, sim.consumer_secret, base_url=sim.base_url)
        recording = _Recording()
        with SpotlerClient(settings, transport=recording) as client:
            outcomes = [
                trigger_campaign(client, trigger, ok, {"score": 3, "comment": None}),
                trigger_campaign(client, trigger, ok),  # already in the campaign
                trigger_campaign(client, trigger, opted_out),
                trigger_campaign(client, stopped, ok),
                trigger_campaign(client, trigger, "nobody@example.invalid"),
                trigger_campaign(client, "no-such-trigger", ok),
                update_contact(client, ok, {"hardbounce_date": "2026-06-14"}),
                update_contact(client, ok, {"no_such_property": "x"}),
                update_contact(client, "nobody@example.invalid", {"hardbounce_date": "x"}),
            ]
        writes = sim.writes
    assert [(o.status, o.http_status, o.error_type) for o in outcomes] == [
        ("sent", 204, None),
        ("rejected", 400, "INVALID_STATE"),
        ("rejected", 400, "CONTACT_OPTOUT"),
        ("rejected", 400, "INVALID_STATE"),
        ("rejected", 400, "CONTACT_NOT_FOUND"),
        ("rejected", 404, "TRIGGER_NOTFOUND"),
        ("sent", 204, None),
        ("rejected", 400, "INVALID_PROPERTY"),
        ("rejected", 404, "CONTACT_NOT_FOUND"),
    ]
    assert [o.message for o in outcomes[1:4]] == [
        "Contact already in campaign",
        "Contact has opted out",
        "Campaign inactive",
    ]
    assert len(recording.exchanges) == len(outcomes)
    for request, status, body in recording.exchanges:
        op = contract.operation(request.method, request.url.raw_path.decode().removeprefix(PREFIX))
        (param,) = [p for p in op.spec["parameters"] if p["paramType"] == "body"]
        contract.validate(param["type"], orjson.loads(request.content))
        assert request.headers["content-type"] == "application/json"
        answers = {m["code"]: m for m in op.spec["responseMessages"]}
        assert status in answers, f"{op} answered {status}"
        if status == 204:
            assert body == b""
        else:
            contract.validate(answers[status]["responseModel"], orjson.loads(body))
    assert [w.kind for w in writes] == ["trigger", "contact"]
    with pytest.raises(jsonschema.ValidationError):  # the check can fail
        contract.validate("ContactRequest", {"update": "yes"})
