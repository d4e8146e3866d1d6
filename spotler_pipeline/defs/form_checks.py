"""Checks of the form tables: keys, and every submission and answer has its parent."""

from __future__ import annotations

from spotler_pipeline.defs.checks import WarehouseCheck, primary_key_checks
from spotler_pipeline.warehouse.form_tables import FORM_ANSWERS, FORM_RESULTS, FORM_TABLES, FORMS
from spotler_pipeline.warehouse.quality import rows_without_parent


def form_checks() -> list[WarehouseCheck]:
    return [
        *primary_key_checks(FORM_TABLES),
        WarehouseCheck(
            FORM_RESULTS,
            "forms_in_catalogue",
            "Every submission belongs to a form in spotler.forms (an orphan means another "
            "account's data, or the form list never loaded).",
            lambda conn, window: rows_without_parent(
                conn, FORM_RESULTS, {"form_id": "id"}, FORMS, window
            ),
            "submissions of forms missing from spotler.forms",
            additional_deps=(FORMS,),
        ),
        WarehouseCheck(
            FORM_ANSWERS,
            "results_exist",
            "Every answer belongs to a submission in spotler.form_results.",
            lambda conn, window: rows_without_parent(
                conn,
                FORM_ANSWERS,
                {"form_id": "form_id", "form_result_id": "form_result_id"},
                FORM_RESULTS,
                window,
            ),
            "answers of unknown submissions",
            additional_deps=(FORM_RESULTS,),
        ),
    ]
