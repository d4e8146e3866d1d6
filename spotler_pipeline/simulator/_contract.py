"""Spotler's published contract (its Swagger 1.2 ``api-docs``, shipped beside this module):
which query parameters each GET operation names, and in which format.

The simulator checks every request against it, so what it accepts is exactly what the
contract documents: no second, hand-written list of parameters to drift from it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

CONTRACT_FILE = "spotler-api-docs.json"
MAX_PAGE_SIZE = 10_000

#: How each documented parameter type is written in a query string. ``ISODateParam`` is
#: ``yyyy-MM-ddTHH:mm:ss``; ``DateParam`` is ``yyyyMMddHHmmss``, the time part optional.
FORMATS: dict[str, tuple[re.Pattern[str], str]] = {
    "integer": (re.compile(r"\d{1,10}"), "a non-negative integer"),
    "boolean": (re.compile(r"true|false"), "true or false"),
    "ISODateParam": (
        re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}"),
        "formatted yyyy-MM-ddTHH:mm:ss",
    ),
    "DateParam": (re.compile(r"\d{8}(?:\d{6})?"), "formatted yyyyMMddHHmmss"),
    "string": (re.compile(r".*", re.DOTALL), "text"),
}


class ContractViolation(ValueError):
    """A request the contract does not allow (the message says what to change)."""


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    required: bool


@dataclass(frozen=True)
class Operation:
    """One operation of the contract: its method, path template and query parameters."""

    method: str
    path: str
    parameters: tuple[Parameter, ...]
    literal_segments: int  # ``/form/list`` beats ``/form/{formId}`` for the path form/list
    pattern: re.Pattern[str]

    def check(self, params: dict[str, str]) -> None:
        """Raise :class:`ContractViolation` unless ``params`` (the query, OAuth parameters
        left out) names only this operation's parameters, has the required ones, and
        writes each in its documented format."""
        named = {p.name: p for p in self.parameters}
        for name in params:
            if name not in named:
                allowed = ", ".join(named) or "none"
                raise ContractViolation(
                    f"{name} is not a parameter of {self.method} {self.path} (allowed: {allowed})"
                )
        for p in self.parameters:
            value = params.get(p.name)
            if value is None:
                if p.required:
                    raise ContractViolation(f"{p.name} is required")
                continue
            pattern, described = FORMATS.get(p.type, FORMATS["string"])
            if not pattern.fullmatch(value):
                raise ContractViolation(f"{p.name} must be {described}, got {value!r}")
            if p.name == "pageSize" and not 1 <= int(value) <= MAX_PAGE_SIZE:
                raise ContractViolation(f"pageSize must be between 1 and {MAX_PAGE_SIZE}")


def _operation(method: str, path: str, parameters: list[dict[str, Any]]) -> Operation:
    segments = path.strip("/").split("/")
    regex = "/".join("[^/]+" if s.startswith("{") else re.escape(s) for s in segments)
    return Operation(
        method=method,
        path=path,
        parameters=tuple(
            Parameter(p["name"], p.get("type", "string"), bool(p.get("required")))
            for p in parameters
            if p.get("paramType") == "query"
        ),
        literal_segments=sum(not s.startswith("{") for s in segments),
        pattern=re.compile(regex),
    )


@cache
def contract() -> list[dict[str, Any]]:
    """The contract as published: a list of Swagger 1.2 API declarations."""
    text = resources.files(__package__).joinpath(CONTRACT_FILE).read_text(encoding="utf-8")
    return json.loads(text)


@cache
def operations() -> tuple[Operation, ...]:
    return tuple(
        _operation(op["method"], api["path"], op.get("parameters", []))
        for declaration in contract()
        for api in declaration["apis"]
        for op in api["operations"]
    )


def operation(method: str, path: str) -> Operation | None:
    """The contract's operation for ``method`` on ``path`` (relative to the base URL,
    percent-encoded as sent), the most literal match first; None if it documents none."""
    segments = path.strip("/")
    matches = [op for op in operations() if op.method == method and op.pattern.fullmatch(segments)]
    return max(matches, key=lambda op: op.literal_segments, default=None)
