"""Tables of forms and surveys: the forms, their submissions and every answer.

Spotler reports a form's submissions without saying which contact made them; the link to
a contact comes from the contact's own form history (``contact_form_history``).
"""

from __future__ import annotations

from spotler_pipeline import records
from spotler_pipeline.warehouse.campaign_tables import PRESENCE_COLUMNS
from spotler_pipeline.warehouse.model import Column, Table, record_column, record_columns

SUBMIT_DAY = Column(
    "submit_day",
    "DATE",
    "Day the form was submitted in the account's time zone.",
)
FORM_ID = Column("form_id", "VARCHAR", "Spotler's id of the form.")
FORM_RESULT_ID = record_column(records.FormResult, "form_result_id")

FORMS = Table(
    name="forms",
    description="One row per form or survey, current or gone.",
    columns=(
        *record_columns(records.Form),
        *PRESENCE_COLUMNS,
    ),
    primary_key=("id",),
)

FORM_RESULTS = Table(
    name="form_results",
    description=(
        "One row per submission of a form. Test submissions (test_result) are kept but "
        "left out of the summary views."
    ),
    columns=(
        SUBMIT_DAY,
        FORM_ID,
        *record_columns(records.FormResult),
        Column("answer_count", "INTEGER", "Number of answers (questions) in the submission."),
    ),
    primary_key=("form_id", "form_result_id"),
    partition_column="submit_day",
)

FORM_ANSWERS = Table(
    name="form_answers",
    description="One row per answer (question) of a form submission.",
    columns=(
        SUBMIT_DAY,
        FORM_ID,
        FORM_RESULT_ID,
        *record_columns(records.FormAnswer),
        Column(
            "answer_type",
            "VARCHAR",
            "Kind of answer: text (one value), list (several values, e.g. multiple choice), "
            "null (unanswered); number, boolean or object for a bare value of that kind.",
        ),
        Column(
            "answer_text",
            "VARCHAR",
            "The answer as text for easy SQL: the values joined with ', ' (a one-value answer "
            "is that value), bare numbers as written; NULL when unanswered.",
        ),
    ),
    primary_key=("form_id", "form_result_id", "rank"),
    partition_column="submit_day",
)

FORM_TABLES = (FORMS, FORM_RESULTS, FORM_ANSWERS)
