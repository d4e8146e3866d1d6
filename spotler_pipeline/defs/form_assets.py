"""Assets of forms and surveys: the forms, every submission and every answer.

The form list (endpoint 13) is read whole and merged by presence like the campaign
catalogue. Submissions come from the form's "total response" (endpoint 15) per submit day,
``startDate``/``endDate`` bounding the day; each answer is kept exactly as Spotler sent it
(JSON) and also rendered as text, so ``WHERE answer_text = 'Nee'`` just works.
"""

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import dagster as dg
import orjson

from spotler_pipeline.client import Form, FormResult, SpotlerClient
from spotler_pipeline.defs.catalogue_rows import row_for
from spotler_pipeline.defs.checks import checks_for, inline_results
from spotler_pipeline.defs.config import DeploymentSettings
from spotler_pipeline.defs.fetching import each_or_none
from spotler_pipeline.defs.form_checks import form_checks
from spotler_pipeline.defs.metadata import (
    materialize_results,
    report_kept,
    table_spec,
    writing_step,
)
from spotler_pipeline.defs.partitions import daily_partitions, run_days
from spotler_pipeline.defs.resources import ClockResource, SpotlerResource, WarehouseResource
from spotler_pipeline.defs.schedules import automated_group, daily_after_upstream
from spotler_pipeline.defs.writing import ItemScope, merge_listing, rows_table, write_staged
from spotler_pipeline.warehouse.form_tables import FORM_ANSWERS, FORM_RESULTS, FORMS

GROUP = "forms"


def answer_type(answer: Any) -> str:
    """The kind of an answer. Spotler sends an array of strings: ``text`` for one value (an
    open or scale question, a single choice), ``list`` for several (multiple choice),
    ``null`` for none (unanswered). A bare value, tolerated, is ``text``, ``number``,
    ``boolean`` or ``object`` by its JSON kind (``null`` for JSON null)."""
    if isinstance(answer, list):
        values = [item for item in answer if item is not None]
        return {0: "null", 1: "text"}.get(len(values), "list")
    if answer is None:
        return "null"
    if isinstance(answer, bool):
        return "boolean"
    if isinstance(answer, int | float):
        return "number"
    if isinstance(answer, str):
        return "text"
    return "object"


def answer_text(answer: Any) -> str | None:
    """An answer as text: an array's values joined with ``", "`` (a one-element answer
    ``["7"]`` is ``'7'``), a bare text as is, a number or boolean as JSON writes it, an
    object as JSON; ``None`` when unanswered (null or an empty array)."""
    if answer is None:
        return None
    if isinstance(answer, str):
        return answer
    if isinstance(answer, list):
        items = [item for item in map(answer_text, answer) if item is not None]
        return ", ".join(items) if items else None
    return orjson.dumps(answer).decode()


def _result_rows(
    form_id: str, result: FormResult, submit_day: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    ids = {"submit_day": submit_day, "form_id": form_id, "form_result_id": result.form_result_id}
    row = row_for(FORM_RESULTS, result, **ids, answer_count=len(result.answers))
    answers = [
        row_for(
            FORM_ANSWERS,
            a,
            **ids,
            answer=orjson.dumps(a.answer).decode(),
            answer_type=answer_type(a.answer),
            answer_text=answer_text(a.answer),
        )
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

    @writing_step(
        "spotler_forms",
        [
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
        list_checks,
        pool=settings.pool,
    )
    def spotler_forms(
        context: dg.AssetExecutionContext,
        spotler: SpotlerResource,
        warehouse: WarehouseResource,
        clock: ClockResource,
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        seen_at = clock.now(tz)
        with spotler.get_client(warehouse.contact_key()) as client:
            listed = forms_with_id(client)
            requests = client.request_count
        context.log.info(f"{len(listed)} forms listed by Spotler")
        rows = [row_for(FORMS, f) for f in listed]
        yield from merge_listing(
            context,
            warehouse,
            {FORMS: rows},
            list_checks,
            seen_at=seen_at,
            account=spotler.account(),
            requests=requests,
        )

    @writing_step(
        "spotler_form_results",
        [
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
                    "Spotler sent it (`answer`, JSON: an array of strings, one value or several "
                    "for multiple choice) and as text (`answer_text`, values joined by ', ') for "
                    "easy filtering, e.g. to follow up negative survey answers. Source: "
                    "`GET /form/result/{formId}`."
                ),
                automation_condition=daily_after_upstream(tz, days=2),
            ),
        ],
        result_checks,
        pool=settings.pool,
        partitions_def=submit_days,
    )
    def spotler_form_results(
        context: dg.AssetExecutionContext, spotler: SpotlerResource, warehouse: WarehouseResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        run = run_days(context)
        tables = [FORM_RESULTS, FORM_ANSWERS]
        with spotler.get_client(warehouse.contact_key()) as client, warehouse.staging() as stage:
            listed = forms_with_id(client)
            context.log.info(f"Fetching the submissions of {len(listed)} forms for {run.text}")

            def fetch(job: tuple[Form, datetime, datetime]) -> int:
                form, start, end = job
                # endDate is inclusive: keep [start, end) so a midnight submission lands once
                listing = client.list_form_results(form.id or "", start, end)
                rows, answers = [], []
                for r in listing:
                    if r.submitted_at is None or not start <= r.submitted_at < end:
                        continue
                    row, answer_rows = _result_rows(form.id or "", r, start.date())
                    rows.append(row)
                    answers.extend(answer_rows)
                stage.append(FORM_RESULTS, rows_table(FORM_RESULTS, rows))
                stage.append(FORM_ANSWERS, rows_table(FORM_ANSWERS, answers))
                return len(rows)

            jobs = [(f, d.start, d.end) for d in run.each_day for f in listed]
            # A form deleted after the form list was read answers 404: None.
            counts = each_or_none(
                fetch,
                jobs,
                workers=spotler.max_concurrent_requests,
                log=context.log,
                what="Submissions",
                noun="form days",
            )
            missing = {
                form.id or "" for (form, _, _), n in zip(jobs, counts, strict=True) if n is None
            }
            requests = client.request_count
            context.log.info(
                f"{sum(n or 0 for n in counts):,} submissions with "
                f"{stage.rows(FORM_ANSWERS):,} answers in {run.text} ({requests} requests)"
            )
            results = write_staged(
                warehouse,
                stage,
                tables,
                run.days,
                scope=ItemScope("form_id", [f.id or "" for f in listed], FORMS, "id"),
                missing=missing,
                account=spotler.account(),
                log=context.log,
                requests=requests,
            )
        kept = report_kept(context.log, results, missing, "forms")
        yield from materialize_results(
            results,
            tables,
            api_requests=requests,
            window=run.text,
            extra={"forms": dg.MetadataValue.int(len(listed)), **kept},
        )
        yield from inline_results(context, warehouse, result_checks, run.days)

    return [spotler_forms, spotler_form_results]


def build_form_definitions(settings: DeploymentSettings) -> dg.Definitions:
    """Form assets, checks and jobs, to merge into the code location."""
    forms, results = build_form_assets(settings)
    return automated_group(
        {
            "spotler_forms_list": (forms, "The list of forms and surveys."),
            "spotler_form_results_refresh": (
                results,
                "Form submissions and answers for a range of submit days.",
            ),
        },
        ("spotler_forms_all_days", form_checks()),
        settings.timezone,
        deadline=[results],
    )
