"""Assets of forms and surveys: the forms, every submission and every answer.

The form list (endpoint 13) is read whole and merged by presence like the campaign
catalogue. Submissions come from the form's "total response" (endpoint 15) per submit day,
``startDate``/``endDate`` bounding the day; each answer is kept exactly as Spotler sent it
(JSON) and also rendered as text, so ``WHERE answer_text = 'Nee'`` just works.
"""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import dagster as dg
import orjson

from spotler_pipeline.client import Form, FormResult, SpotlerClient, SpotlerNotFoundError
from spotler_pipeline.defs.campaign_assets import presence_metadata, rows_table
from spotler_pipeline.defs.checks import checks_for, inline_results, written_window
from spotler_pipeline.defs.config import DeploymentSettings
from spotler_pipeline.defs.form_checks import form_checks
from spotler_pipeline.defs.metadata import (
    asset_key,
    materialize_results,
    report_kept,
    table_spec,
    window_text,
)
from spotler_pipeline.defs.partitions import check_partition_range, daily_partitions
from spotler_pipeline.defs.resources import ClockResource, SpotlerResource, WarehouseResource
from spotler_pipeline.defs.schedules import daily_after_upstream
from spotler_pipeline.warehouse import Absent, Replacement, Scope
from spotler_pipeline.warehouse.form_tables import FORM_ANSWERS, FORM_RESULTS, FORMS

GROUP = "forms"


def answer_type(answer: Any) -> str:
    """The JSON kind of an answer: text, number, boolean, list, object or null."""
    if answer is None:
        return "null"
    if isinstance(answer, bool):
        return "boolean"
    if isinstance(answer, int | float):
        return "number"
    if isinstance(answer, str):
        return "text"
    if isinstance(answer, list):
        return "list"
    return "object"


def answer_text(answer: Any) -> str | None:
    """An answer as text: text as is, numbers and booleans as JSON writes them, list items
    joined with ``", "``, objects as JSON; ``None`` when unanswered."""
    if answer is None:
        return None
    if isinstance(answer, str):
        return answer
    if isinstance(answer, list):
        items = [answer_text(item) for item in answer]
        return ", ".join(item for item in items if item is not None)
    return orjson.dumps(answer).decode()


def _result_rows(
    form_id: str, result: FormResult, submit_day: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    ids = {"submit_day": submit_day, "form_id": form_id, "form_result_id": result.form_result_id}
    row = {
        **ids,
        "submitted_at": result.submitted_at,
        "completed": result.completed,
        "test_result": result.test_result,
        "answer_count": len(result.answers),
    }
    answers = [
        {
            **ids,
            "rank": a.rank,
            "field_id": a.field_id,
            "description": a.description,
            "answer": orjson.dumps(a.answer).decode(),
            "answer_type": answer_type(a.answer),
            "answer_text": answer_text(a.answer),
        }
        for a in result.answers
    ]
    return row, answers


def forms_with_id(client: SpotlerClient) -> list[Form]:
    return [f for f in client.list_forms() if f.id is not None]


def build_form_assets(settings: DeploymentSettings) -> list[dg.AssetsDefinition]:
    tz = settings.timezone
    submit_days = daily_partitions(settings.partitions_start, tz)
    checks = form_checks()
    list_checks = checks_for(checks, (FORMS,))
    result_checks = checks_for(checks, (FORM_RESULTS, FORM_ANSWERS))

    @dg.multi_asset(
        name="spotler_forms",
        specs=[
            table_spec(
                FORMS,
                group=GROUP,
                description=(
                    "Every form and survey in the account (newsletter sign-up and sign-off, "
                    "profile, satisfaction surveys, ...) with its kind and state (draft, "
                    "proof, final). Refreshed whole daily; a form Spotler no longer lists is "
                    "kept with `present = false`. Source: `GET /form/list`."
                ),
                automation_condition=daily_after_upstream(tz),
            )
        ],
        pool=settings.pool,
        check_specs=[c.spec() for c in list_checks],
    )
    def spotler_forms(
        context: dg.AssetExecutionContext,
        spotler: SpotlerResource,
        warehouse: WarehouseResource,
        clock: ClockResource,
    ) -> dg.MaterializeResult:
        seen_at = clock.now(tz)
        with spotler.get_client() as client:
            listed = forms_with_id(client)
            requests = client.request_count
        context.log.info(f"{len(listed)} forms listed by Spotler")
        rows = [
            {
                "id": f.id,
                "name": f.name,
                "form_sub_type": f.form_sub_type,
                "form_state": f.form_state,
                "present": True,
                "first_seen_at": seen_at,
                "last_seen_at": seen_at,
            }
            for f in listed
        ]
        with warehouse.staging() as stage:
            stage.append(FORMS, rows_table(FORMS, rows))
            (result,) = warehouse.merge(
                [Replacement(FORMS, stage.files(FORMS))], account=spotler.account()
            )
        if result.rows_gone:
            context.log.warning(
                f"{result.rows_gone} forms no longer listed by Spotler; kept with present = false"
            )
        return dg.MaterializeResult(
            asset_key=asset_key(FORMS),
            metadata=presence_metadata(result, requests),
            check_results=list(inline_results(context, warehouse, list_checks, None)),
        )

    @dg.multi_asset(
        name="spotler_form_results",
        specs=[
            table_spec(
                FORM_RESULTS,
                group=GROUP,
                partitions_def=submit_days,
                deps=[FORMS],
                description=(
                    "Every submission of every form by the day it was submitted: completed "
                    "or not, and whether it was a test submission (kept, flagged in "
                    "`test_result`, left out of `form_response_summary`). Spotler does not "
                    "say who submitted; `contact_form_history` links submissions to "
                    "contacts. Source: `GET /form/result/{formId}`."
                ),
                # Yesterday's and today's (still filling up), after the form list.
                automation_condition=daily_after_upstream(tz, days=2),
            ),
            table_spec(
                FORM_ANSWERS,
                group=GROUP,
                partitions_def=submit_days,
                deps=[FORM_RESULTS],
                description=(
                    "Every answer of every submission: the question, the answer exactly as "
                    "Spotler sent it (`answer`, JSON: text, number, multiple-choice list or "
                    "null) and as text (`answer_text`) for easy filtering, e.g. to follow up "
                    "negative survey answers. Source: `GET /form/result/{formId}`."
                ),
                automation_condition=daily_after_upstream(tz, days=2),
            ),
        ],
        partitions_def=submit_days,
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=31),
        pool=settings.pool,
        check_specs=[c.spec() for c in result_checks],
    )
    def spotler_form_results(
        context: dg.AssetExecutionContext, spotler: SpotlerResource, warehouse: WarehouseResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        check_partition_range(context)
        window = context.partition_time_window
        days = [submit_days.time_window_for_partition_key(k) for k in context.partition_keys]
        text = window_text(context.partition_keys)
        missing: set[str] = set()
        with spotler.get_client() as client, warehouse.staging() as stage:
            listed = forms_with_id(client)
            context.log.info(f"Fetching the submissions of {len(listed)} forms for {text}")

            def fetch(job: tuple[Form, datetime, datetime]) -> int:
                form, start, end = job
                # endDate is inclusive: keep [start, end) so a midnight submission lands once
                try:
                    listing = client.list_form_results(form.id or "", start, end)
                except SpotlerNotFoundError:  # deleted after the form list was read
                    missing.add(form.id or "")
                    return 0
                results = [
                    r
                    for r in listing
                    if r.submitted_at is not None and start <= r.submitted_at < end
                ]
                rows, answers = [], []
                for r in results:
                    row, answer_rows = _result_rows(form.id or "", r, start.date())
                    rows.append(row)
                    answers.extend(answer_rows)
                stage.append(FORM_RESULTS, rows_table(FORM_RESULTS, rows))
                stage.append(FORM_ANSWERS, rows_table(FORM_ANSWERS, answers))
                return len(rows)

            jobs = [(f, d.start, d.end) for d in days for f in listed]
            with ThreadPoolExecutor(spotler.max_concurrent_requests) as pool:
                submissions = sum(pool.map(fetch, jobs))
            requests = client.request_count
            context.log.info(
                f"{submissions:,} submissions with {stage.rows(FORM_ANSWERS):,} answers "
                f"in {text} ({requests} requests)"
            )
            scope = Scope("form_id", [f.id or "" for f in listed if f.id not in missing])
            results = warehouse.replace(
                [Replacement(t, stage.files(t), scope) for t in (FORM_RESULTS, FORM_ANSWERS)],
                window.start.date(),
                window.end.date(),
                absent=[Absent(FORMS, "id", sorted(missing))] if missing else [],
                account=spotler.account(),
            )
        kept = report_kept(context.log, results, missing, "forms")
        yield from materialize_results(
            results,
            (FORM_RESULTS, FORM_ANSWERS),
            api_requests=requests,
            window=text,
            extra={"forms": dg.MetadataValue.int(len(listed)), **kept},
        )
        yield from inline_results(
            context, warehouse, result_checks, written_window(window.start, window.end)
        )

    return [spotler_forms, spotler_form_results]


def build_form_definitions(settings: DeploymentSettings) -> dg.Definitions:
    """Form assets, checks, jobs and schedules, to merge into the code location."""
    from spotler_pipeline.defs.checks import nightly_checks
    from spotler_pipeline.defs.schedules import freshness_checks

    forms, results = build_form_assets(settings)
    forms_job = dg.define_asset_job(
        "spotler_forms_list",
        selection=dg.AssetSelection.assets(forms),
        description="The list of forms and surveys.",
    )
    results_job = dg.define_asset_job(
        "spotler_form_results_refresh",
        selection=dg.AssetSelection.assets(results),
        description="Form submissions and answers for a range of submit days.",
    )
    freshness = freshness_checks([results], settings.timezone)
    return dg.Definitions(
        assets=[forms, results],
        asset_checks=[nightly_checks("spotler_forms_all_days", form_checks()), *freshness],
        # No schedules: the assets' automation conditions refresh them daily, in order.
        jobs=[forms_job, results_job],
    )
