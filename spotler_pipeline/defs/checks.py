"""Asset checks that read the warehouse. Each can fail, and shows the offending rows.

A :class:`WarehouseCheck` is one rule about one table, declared once and evaluated two ways:

- **inline**: a check spec of the multi-asset that writes the table, evaluated in the step
  that wrote, right after its write, on the days it wrote (:func:`inline_results`). A run
  costs what its data costs: no process or step of its own, and no scan of the history.
- **nightly**: the same rule over every day, as a standalone check named
  ``<name>_all_days`` (:func:`nightly_checks`), run by job ``spotler_nightly_checks`` on its
  own schedule. It sees what a window cannot: a key repeated across days, rows changed
  outside any write.

Both read through ``WarehouseResource.read``: the inline ones, in a run that has written and
not yet published, the file itself (what the run wrote; their writing step holds the DuckDB
pool's slot); the nightly ones the published copy, so they need no slot and never hold up a
writer.
"""

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime

import dagster as dg
import duckdb

from spotler_pipeline.client.errors import contact_tag, mask_personal_data
from spotler_pipeline.defs.metadata import asset_key
from spotler_pipeline.defs.resources import WarehouseResource
from spotler_pipeline.warehouse import Table
from spotler_pipeline.warehouse.connection import is_usable
from spotler_pipeline.warehouse.quality import Finding, Window, duplicate_keys, single_threaded
from spotler_pipeline.warehouse.writes import set_memory_limit

Query = Callable[[duckdb.DuckDBPyConnection, Window | None], Finding]

#: DuckDB's memory limit on the connection the nightly whole-table checks read with, above
#: the pipeline's usual one: a key check over a busy day ran out of memory there, as DuckDB
#: did not spill that aggregate to disk when scanning the attached file. The key checks
#: also work in slices of ``quality.SLICE_ROWS`` rows.
CHECK_MEMORY_LIMIT = "192MB"
#: The same for the checks a writing step runs on the days it wrote, where they set the
#: run's peak memory: lower, since with the slices a key check takes as long under it and
#: holds far less. Slices shrink with the limit (``quality.SLICE_ROW_BYTES``), so a first
#: load's many days are checked in more slices.
INLINE_CHECK_MEMORY_LIMIT = "64MB"

#: Suffix of the nightly whole-table version of a check.
ALL_DAYS = "_all_days"
NIGHTLY_JOB = "spotler_nightly_checks"


def result_of(
    finding: Finding,
    *,
    what: str,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
    key: dg.AssetCheckKey | None = None,
    extra: dict[str, dg.MetadataValue] | None = None,
    contact_key: bytes | None = None,
) -> dg.AssetCheckResult:
    """The check's result: counts, and a sample of the offending rows in which every contact
    is shown by its tag under ``contact_key`` (the warehouse's), never by its id."""
    sample = masked_sample(finding.sample, contact_key)
    return dg.AssetCheckResult(
        asset_key=key.asset_key if key else None,
        check_name=key.name if key else None,
        passed=finding.passed,
        severity=severity,
        description=(
            f"{finding.checked:,} checked, no {what}"
            if finding.passed
            else f"{finding.problems:,} {what} among {finding.checked:,} checked: "
            + "; ".join(_row_text(row) for row in sample[:3])
            + ("; ..." if finding.problems > 3 else "")
        ),
        metadata={
            "checked": dg.MetadataValue.int(finding.checked),
            "problems": dg.MetadataValue.int(finding.problems),
            "sample": dg.MetadataValue.json(sample),
            **(extra or {}),
        },
    )


#: Columns whose values identify a contact: shown as ``<contact:…>`` tags.
CONTACT_COLUMNS = frozenset({"contact_external_id", "contact_encrypted_id"})


def masked_sample(
    rows: Sequence[Mapping[str, object]], contact_key: bytes | None
) -> list[dict[str, object]]:
    """``rows`` fit for the event log: contact columns as their tags, and any e-mail address
    in another text (a form answer, say) as its tag too."""

    def masked(column: str, value: object) -> object:
        if not isinstance(value, str):
            return value
        if column in CONTACT_COLUMNS:
            return contact_tag(value, contact_key)
        return mask_personal_data(value, key=contact_key)

    return [{k: masked(k, v) for k, v in row.items()} for row in rows]


def _row_text(row: dict[str, object]) -> str:
    """One offending row, named in the check's description (the UI shows it first)."""
    return ", ".join(
        f"{k} {v:,}" if isinstance(v, int) and not isinstance(v, bool) else f"{k} {v}"
        for k, v in row.items()
    )


@dataclass(frozen=True)
class WarehouseCheck:
    """A rule about ``table``: it holds when ``query`` finds no problem rows.

    ``query`` takes the days to look at (the window a write covered) or ``None`` for every
    day; an unpartitioned table is always checked whole.
    """

    table: Table
    name: str
    description: str
    query: Query
    what: str
    additional_deps: tuple[Table, ...] = ()
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR

    @property
    def key(self) -> dg.AssetCheckKey:
        return dg.AssetCheckKey(asset_key(self.table), self.name)

    @property
    def partitioned(self) -> bool:
        return self.table.partition_column is not None

    @property
    def nightly_key(self) -> dg.AssetCheckKey:
        return dg.AssetCheckKey(asset_key(self.table), self.name + ALL_DAYS)

    def spec(self) -> dg.AssetCheckSpec:
        """The inline check spec, for the multi-asset that writes ``table``.

        An ERROR check is blocking: when it fails, the step that wrote fails after reporting
        every result (so ``dagster asset materialize`` exits non-zero and downstream steps
        of the run are skipped), while the write it checked stays committed. A green run
        means every ERROR check passed. WARN checks never fail a run."""
        scope = (
            f" Checked in the step that writes, on the {self.table.partition_column}s it "
            f"wrote; `{self.name}{ALL_DAYS}` checks every day nightly."
            if self.partitioned
            else " Checked in the step that writes, on the whole table."
        )
        return dg.AssetCheckSpec(
            self.name,
            asset=asset_key(self.table),
            description=self.description + scope,
            additional_deps=[asset_key(t) for t in self.additional_deps],
            blocking=self.severity == dg.AssetCheckSeverity.ERROR,
        )

    def nightly_spec(self) -> dg.AssetCheckSpec:
        return dg.AssetCheckSpec(
            self.name + ALL_DAYS,
            asset=asset_key(self.table),
            description=(
                f"{self.description} Every day of the table, nightly (job {NIGHTLY_JOB}); "
                f"each write checks the days it wrote (`{self.name}`)."
            ),
            additional_deps=[asset_key(t) for t in self.additional_deps],
        )

    def evaluate(
        self,
        conn: duckdb.DuckDBPyConnection,
        window: Window | None,
        key: dg.AssetCheckKey | None = None,
        *,
        contact_key: bytes | None = None,
    ) -> dg.AssetCheckResult:
        """The check's result on ``window`` (``None``: every day) as ``key`` (the inline key
        by default), contacts in its sample tagged under ``contact_key``."""
        window = window if self.partitioned else None
        key = key or self.key
        started = time.monotonic()
        extra = {
            "days_checked": dg.MetadataValue.text("all" if window is None else _days_text(window))
        }
        try:
            try:
                finding = self.query(conn, window)
            except duckdb.OutOfMemoryException:
                with single_threaded(conn):
                    finding = self.query(conn, window)
                extra["evaluated_on_one_thread"] = dg.MetadataValue.bool(True)
        except duckdb.Error as exc:
            # The write this check follows is committed: a query that cannot run (out of
            # memory, say) is a failed check a person sees, not a failed step that hides
            # the other checks' results.
            # DuckDB quotes the value it choked on, which may be an address.
            message = mask_personal_data(
                f"{type(exc).__name__}: {str(exc).splitlines()[0]}", key=contact_key
            )
            return dg.AssetCheckResult(
                asset_key=key.asset_key,
                check_name=key.name,
                passed=False,
                severity=self.severity,
                description=f"Could not be evaluated: {message}",
                metadata={**extra, "error": dg.MetadataValue.text(message)},
            )
        extra["seconds"] = dg.MetadataValue.float(round(time.monotonic() - started, 3))
        return result_of(
            finding,
            what=self.what,
            severity=self.severity,
            key=key,
            extra=extra,
            contact_key=contact_key,
        )


def _days_text(window: Window) -> str:
    last = date.fromordinal(window.end.toordinal() - 1)
    days = window.start.isoformat() if last == window.start else f"{window.start} .. {last}"
    if window.item_column is not None:
        days += f" ({len(window.items)} {window.item_column}s rewritten)"
    return days


def checks_for(checks: Iterable[WarehouseCheck], tables: Iterable[Table]) -> list[WarehouseCheck]:
    """The checks of ``tables`` (those a multi-asset writes), in declaration order."""
    wanted = {t.name for t in tables}
    return [c for c in checks if c.table.name in wanted]


def written_window(start: datetime | date, end: datetime | date) -> Window:
    """The window of days ``[start, end)`` a partitioned write covered."""
    as_day = lambda d: d.date() if isinstance(d, datetime) else d  # noqa: E731
    return Window(as_day(start), as_day(end))


@contextmanager
def _check_connection(
    warehouse: WarehouseResource, memory_limit: str, own_writes: bool = True
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read connection for checks under ``memory_limit``, unless the user set a
    ``memory_limit`` of their own in the warehouse's ``connection_config`` (theirs wins);
    ``own_writes`` as :meth:`WarehouseResource.read` takes it."""
    with warehouse.read(own_writes=own_writes) as conn:
        if "memory_limit" not in warehouse.connection_config:
            set_memory_limit(conn, memory_limit)
        yield conn


def evaluated(
    warehouse: WarehouseResource,
    memory_limit: str,
    todo: Iterable[tuple[WarehouseCheck, Window | None, dg.AssetCheckKey | None]],
    *,
    own_writes: bool = True,
) -> Iterator[dg.AssetCheckResult]:
    """Evaluate each ``(check, window, key)`` of ``todo`` on a read connection under
    ``memory_limit``, in order (``own_writes``: see :meth:`WarehouseResource.read`).

    One connection serves them all, unless a check's query leaves it unusable: an internal
    error in DuckDB invalidates the database it was opened on ("database has been
    invalidated because of a previous fatal error"). That check reports its error, and the
    next ones are evaluated on a new connection instead of all failing with the first one's
    error.
    """
    pending = list(todo)
    contact_key = warehouse.contact_key()
    while pending:
        with _check_connection(warehouse, memory_limit, own_writes) as conn:
            while pending:
                check, window, key = pending.pop(0)
                result = check.evaluate(conn, window, key, contact_key=contact_key)
                yield result
                if "error" in result.metadata and pending and not is_usable(conn):
                    break


def inline_results(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    checks: Sequence[WarehouseCheck],
    window: Window | None,
    written: Mapping[str, Window] | None = None,
) -> Iterator[dg.AssetCheckResult]:
    """Evaluate the run's selected ``checks`` on what the step just wrote (``window``; the
    whole table for unpartitioned ones; ``written`` narrows it per table name, where the
    write replaced only some items), on one read connection, and say how long it took."""
    selected = context.selected_asset_check_keys
    todo = [c for c in checks if c.key in selected]
    if not todo:
        return
    started = time.monotonic()
    results = list(
        evaluated(
            warehouse,
            INLINE_CHECK_MEMORY_LIMIT,
            [(c, (written or {}).get(c.table.name, window), None) for c in todo],
        )
    )
    failed = [r.check_name for r in results if not r.passed]
    context.log.info(
        f"{len(todo)} checks on "
        + ("the whole tables" if window is None else f"days {_days_text(window)}")
        + f" in {time.monotonic() - started:.2f}s"
        + (f"; failed: {', '.join(str(n) for n in failed)}" if failed else "; all passed")
    )
    yield from results


def nightly_checks(name: str, checks: Sequence[WarehouseCheck]) -> dg.AssetChecksDefinition:
    """The ``<check>_all_days`` versions of ``checks`` (of partitioned tables) as one
    standalone check definition ``name``: a single step that scans every day.

    Dagster adds every check of an asset to a run that materialises it (``dagster asset
    materialize``, the UI's Materialize button). Such a run already checked the days it wrote
    inline, so these whole-table scans stay out of it: they are evaluated only in runs that
    write none of their tables (the nightly job, or a launch of the checks alone), and are
    reported as not evaluated otherwise.
    """
    by_key = {c.nightly_key: c for c in checks if c.partitioned}

    @dg.multi_asset_check(
        name=name,
        specs=[c.nightly_spec() for c in by_key.values()],
        can_subset=True,
        description="Whole-table checks of "
        + ", ".join(sorted({c.table.name for c in by_key.values()})),
    )
    def _nightly(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> Iterator[dg.AssetCheckResult]:
        written = set(context.run.asset_selection or ())
        todo = [by_key[k] for k in context.selected_asset_check_keys if k in by_key]
        skipped = [c for c in todo if asset_key(c.table) in written]
        if skipped:
            context.log.info(
                f"Not evaluated in this run, which writes "
                f"{', '.join(sorted({c.table.name for c in skipped}))} and checked the days it "
                f"wrote in its own step: {', '.join(c.name + ALL_DAYS for c in skipped)} "
                f"(every day is checked nightly by job {NIGHTLY_JOB})."
            )
        todo = [c for c in todo if c not in skipped]
        if not todo:
            return
        started = time.monotonic()
        yield from evaluated(
            warehouse,
            CHECK_MEMORY_LIMIT,
            [(c, None, c.nightly_key) for c in todo],
            own_writes=False,
        )
        context.log.info(f"{len(todo)} whole-table checks in {time.monotonic() - started:.1f}s")

    return _nightly


def nightly_definitions(
    defs: dg.Definitions, timezone: str, cron: str = "0 3 * * *"
) -> dg.Definitions:
    """Job ``spotler_nightly_checks`` over every ``<check>_all_days`` check in ``defs``, and
    the schedule that runs it nightly (a time is meant: the quiet hours before the 06:00
    refresh)."""
    keys = [
        key
        for checks_def in defs.asset_checks or []
        if isinstance(checks_def, dg.AssetChecksDefinition)
        for key in checks_def.check_keys
        if key.name.endswith(ALL_DAYS)
    ]
    job = dg.define_asset_job(
        NIGHTLY_JOB,
        selection=dg.AssetSelection.checks(*keys),
        description="Every day of every partitioned table checked, once a night.",
    )
    return dg.Definitions(
        jobs=[job],
        schedules=[
            dg.ScheduleDefinition(
                name=f"{NIGHTLY_JOB}_daily",
                job=job,
                cron_schedule=cron,
                execution_timezone=timezone,
                default_status=dg.DefaultScheduleStatus.RUNNING,
                description=(
                    "the whole-table version (`*_all_days`) of every check of a partitioned "
                    "table; a write checks only the days it wrote"
                ),
            )
        ],
    )


def primary_key_checks(tables: Sequence[Table]) -> list[WarehouseCheck]:
    return [
        WarehouseCheck(
            table,
            "primary_key_unique",
            f"No two rows of {table.qualified_name} share ({', '.join(table.primary_key)}).",
            lambda conn, window, t=table: duplicate_keys(conn, t, window),
            "duplicated keys",
        )
        for table in tables
    ]
