"""The ``Simulator``: a generated account served over HTTP on a background thread."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from spotler_pipeline.simulator._account import Account
from spotler_pipeline.simulator._api import PREFIX, Api, ApiError, Response
from spotler_pipeline.simulator._auth import OAuthVerifier
from spotler_pipeline.simulator._faults import Fault, FaultBook
from spotler_pipeline.simulator._server import Backend, _Server
from spotler_pipeline.simulator._time import ACCOUNT_TZ, from_epoch, to_epoch
from spotler_pipeline.simulator._writes import Write

if TYPE_CHECKING:
    from spotler_pipeline.simulator.testing import SignedSession

REQUEST_LOG_LIMIT = 200_000


class Simulator:
    """A local Spotler-compatible API over a deterministic generated account.

    ``now`` (default: the real current time) starts the simulated clock, which stands still
    until moved with :meth:`set_now` / :meth:`advance` (or ``POST /_simulator/clock``). The
    account of a ``(seed, scale)`` is a function of calendar days (Europe/Amsterdam): a
    simulator started at another ``now`` serves the same mailings, ids and interactions for
    every day both cover. It covers mailings sent on the ``days`` days before the start day,
    that day, and a few scheduled on the two days after it. ``scale``
    multiplies audiences and campaign/form traffic (1.0: sends of thousands to hundreds
    of thousands; 0.001-0.01: tiny accounts for unit tests). ``heavy_days`` maps a send day
    to a target number of interaction rows (recipients + opens + clicks + bounces, once
    mature) and adds one big mailing at 10:00 that day, for benchmarks. Optional fields of
    Spotler's contract are absent where they have no value and for some items anyway;
    ``contract_exact`` leaves out every optional field the data does not need (see
    ``Account``), as an implementation written from the contract alone might. The consumer key
    defaults to one per ``(seed, scale)``: a Spotler key belongs to one account.

    OAuth timestamps are checked against real time, never the simulated clock.
    """

    def __init__(
        self,
        seed: int = 1,
        scale: float = 1.0,
        now: datetime | None = None,
        days: int = 60,
        consumer_key: str | None = None,
        consumer_secret: str = "simulator-secret",
        host: str = "127.0.0.1",
        port: int = 0,
        heavy_days: Mapping[date | str, int] | None = None,
        contract_exact: bool = False,
    ) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self._now = to_epoch(now if now is not None else datetime.now(ACCOUNT_TZ))
        heavy = {
            date.fromisoformat(d) if isinstance(d, str) else d: int(n)
            for d, n in (heavy_days or {}).items()
        }
        self.account = Account(
            seed, scale, from_epoch(self._now).date(), days, heavy, contract_exact
        )
        # One account, one key: a pipeline's warehouse records the key's fingerprint, so a
        # simulator of another seed or scale (another account) is refused, not mixed in.
        self.consumer_key = consumer_key or f"simulator-seed{seed}-scale{scale:g}"
        self.consumer_secret = consumer_secret
        self.host, self.port = host, port
        self._api = Api(self.account)
        self._verifier = OAuthVerifier(self.consumer_key, consumer_secret)
        self._faults = FaultBook()
        self._log: list[tuple[str, str, str, int]] = []
        self._log_lock = threading.Lock()
        self._request_count = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> Simulator:
        if self._server is None:
            backend = Backend(
                api=self._api,
                verifier=self._verifier,
                faults=self._faults,
                now=lambda: self._now,
                admin=self._admin,
                record=self._record,
            )
            self._server = _Server((self.host, self.port), backend)
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"spotler-simulator:{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        return f"http://{self.host}:{self.port}{PREFIX}"

    @property
    def admin_url(self) -> str:
        return self.base_url.removesuffix(PREFIX) + "/_simulator"

    def session(self) -> SignedSession:
        """A signed HTTP session against this simulator (see ``simulator.testing``)."""
        from spotler_pipeline.simulator.testing import SignedSession

        return SignedSession(self.base_url, self.consumer_key, self.consumer_secret)

    # -- clock ---------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return from_epoch(self._now)

    def set_now(self, moment: datetime) -> None:
        """Move the clock (either way); a naive ``moment`` is in the account zone."""
        self._now = to_epoch(moment)

    def advance(self, delta: timedelta) -> None:
        self._now += int(delta.total_seconds())

    # -- faults and observation -------------------------------------------------------------

    def inject(self, fault: Fault) -> Fault:
        self._faults.add(fault)
        return fault

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def faults(self) -> list[Fault]:
        return self._faults.active()

    def _record(self, method: str, path: str, query: str, status: int) -> None:
        with self._log_lock:
            self._request_count += 1
            if len(self._log) >= REQUEST_LOG_LIMIT:
                del self._log[: REQUEST_LOG_LIMIT // 2]
            self._log.append((method, path, query, status))

    @property
    def writes(self) -> list[Write]:
        """The writes the simulated account accepted (follow-up actions), oldest first."""
        with self._api.writes.lock:
            return list(self._api.writes.received)

    @property
    def request_count(self) -> int:
        """API requests answered (admin requests excluded)."""
        return self._request_count

    @property
    def requests(self) -> list[tuple[str, str, str, int]]:
        """(method, path as sent, raw query, status) of recent API requests, oldest first."""
        with self._log_lock:
            return list(self._log)

    def reset_log(self) -> None:
        with self._log_lock:
            self._log.clear()
            self._request_count = 0

    def summary(self) -> dict[str, Any]:
        """Counts served as of now, per table and per day (see ``Account.summary``)."""
        return self.account.summary(self._now)

    def prewarm(self) -> int:
        """Generate and render every interaction row now; returns the number of rows."""
        return sum(rows.warm() for rows in self.account.row_sets())

    # -- deletions upstream ------------------------------------------------------------------

    def delete_mailing(self, encrypted_id: str, *, keep_listed: bool = False) -> None:
        """Delete a mailing in the simulated Spotler: it leaves ``/mailing`` and contact
        histories, and every endpoint about it answers 404 ``MAILING_NOTFOUND``. With
        ``keep_listed`` it stays in ``/mailing`` (deleted between a listing and the fetch).
        Raises ``KeyError`` for an unknown id."""
        self.account.delete_mailing(encrypted_id, keep_listed)

    def delete_campaign_mailing(self, encrypted_id: str, *, keep_listed: bool = False) -> None:
        """Delete a campaign message step: it leaves ``/campaign/{id}/mailing`` and contact
        histories, and ``/campaign-mailing/{id}`` and its rows answer 404
        ``CAMPAIGN_NOTFOUND``. ``keep_listed`` keeps it in its campaign's listing. Raises
        ``KeyError`` for an unknown id."""
        self.account.delete_campaign_mailing(encrypted_id, keep_listed)

    def delete_form(self, form_id: int | str, *, keep_listed: bool = False) -> None:
        """Delete a form: it leaves ``/form/list`` and contact histories, and its results
        answer 404 ``FORM_NOT_FOUND``. ``keep_listed`` keeps it in ``/form/list``. Raises
        ``KeyError`` for an unknown id."""
        self.account.delete_form(int(form_id), keep_listed)

    # -- admin HTTP endpoints ----------------------------------------------------------------

    def _admin(self, method: str, path: str, payload: bytes) -> Response:
        try:
            return self._admin_inner(method, path.removeprefix("/_simulator/"), payload)
        except ApiError as exc:
            return exc.response()
        except (ValueError, TypeError, KeyError, orjson.JSONDecodeError) as exc:
            return ApiError(400, "INVALID_PARAMS", f"bad admin request: {exc}").response()

    def _admin_inner(self, method: str, path: str, payload: bytes) -> Response:
        if path == "clock" and method in ("GET", "POST"):
            if method == "POST":
                body = orjson.loads(payload or b"{}")
                if "now" in body:
                    self.set_now(datetime.fromisoformat(body["now"]))
                if "advance_seconds" in body:
                    self.advance(timedelta(seconds=float(body["advance_seconds"])))
            return Response(200, orjson.dumps({"now": self.now.isoformat()}))
        if path == "faults" and method == "POST":
            specs = orjson.loads(payload)
            for spec in specs if isinstance(specs, list) else [specs]:
                self.inject(Fault.from_json(spec))
            return Response(200, orjson.dumps([f.to_json() for f in self.faults]))
        if path == "faults" and method == "GET":
            return Response(200, orjson.dumps([f.to_json() for f in self.faults]))
        if path == "faults" and method == "DELETE":
            self.clear_faults()
            return Response(200, b"[]")
        if path == "summary" and method == "GET":
            return Response(200, orjson.dumps(self.summary()))
        if path == "prewarm" and method == "POST":
            return Response(200, orjson.dumps({"rows": self.prewarm()}))
        if path == "delete" and method == "POST":
            return self._admin_delete(orjson.loads(payload or b"{}"))
        raise ApiError(404, "RESOURCE_NOT_FOUND", f"no admin endpoint {method} {path}")

    def _admin_delete(self, body: dict[str, Any]) -> Response:
        """``{"kind": "mailing" | "campaign_mailing" | "form", "id": ..., "keep_listed": false}``"""
        kind, item, keep = body["kind"], str(body["id"]), body.get("keep_listed", False)
        if not isinstance(keep, bool):
            raise ApiError(400, "INVALID_PARAMS", "keep_listed must be true or false")
        deletions = {
            "mailing": (self.delete_mailing, "MAILING_NOTFOUND"),
            "campaign_mailing": (self.delete_campaign_mailing, "CAMPAIGN_NOTFOUND"),
            "form": (self.delete_form, "FORM_NOT_FOUND"),
        }
        if kind not in deletions:
            raise ApiError(400, "INVALID_PARAMS", f"kind must be one of {', '.join(deletions)}")
        delete, not_found = deletions[kind]
        if kind == "form" and not item.isdigit():
            raise ApiError(404, not_found, f"no form {item!r}")
        try:
            delete(item, keep_listed=keep)
        except KeyError:
            raise ApiError(404, not_found, f"no {kind.replace('_', ' ')} {item!r}") from None
        return Response(200, orjson.dumps({"kind": kind, "id": item, "keep_listed": keep}))
