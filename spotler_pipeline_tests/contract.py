"""Spotler's published contract (its Swagger 1.2 ``api-docs``) as a test oracle.

``validate(model_name, body)`` checks a response body against a model of the contract,
converted to JSON Schema for ``jsonschema``: the model's ``required`` list is required,
each property has its type (integer, int32 within its range, number, string, boolean,
array, another model by ``$ref``), enums are enforced, unknown properties are tolerated.
``operation(method, path)`` finds the operation a request addresses, ``response_model``
names what it answers and ``request_problems`` says what in a query string the operation
does not allow.

Written from the JSON alone, apart from the simulator's own reading of it, so the two
check each other.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jsonschema

CONTRACT = resources.files("spotler_pipeline.simulator").joinpath("spotler-api-docs.json")
SHARED_COPY = Path("/work/shared/spotler-api-docs.json")
DATE_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}"

#: How each parameter type is written in a query string, per the contract's notes.
PARAM_FORMATS = {
    "integer": r"\d+",
    "boolean": r"true|false",
    "ISODateParam": r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}",  # yyyy-MM-ddTHH:mm:ss
    "DateParam": r"\d{8}(\d{6})?",  # yyyyMMddHHmmss, the time part optional
    "string": r".*",
}


@cache
def declarations() -> list[dict[str, Any]]:
    return json.loads(CONTRACT.read_text(encoding="utf-8"))


@cache
def models() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for declaration in declarations():
        out.update(declaration.get("models", {}))
    return out


def _property_schema(prop: dict[str, Any]) -> dict[str, Any]:
    """One Swagger 1.2 property (or ``items``) as JSON Schema."""
    kind = prop.get("$ref") or prop.get("type")
    if kind in models():  # another model, by ``$ref`` or named as the type
        return {"$ref": f"#/$defs/{kind}"}
    schema: dict[str, Any]
    if kind == "array":
        schema = {"type": "array", "items": _property_schema(prop.get("items", {}))}
    elif kind == "integer" and prop.get("format") == "int32":
        schema = {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1}
    elif kind == "integer":
        schema = {"type": "integer"}
    elif kind == "number":
        schema = {"type": "number"}
    elif kind == "boolean":
        schema = {"type": "boolean"}
    elif kind == "date-time" or prop.get("format") == "date-time":
        schema = {"type": "string", "pattern": DATE_TIME}
    elif kind == "string" or "enum" in prop:  # a string, or an enum type such as ErrorType
        schema = {"type": "string"}
    else:  # a type the contract names but does not declare (Map[string,Object], ...)
        schema = {}
    if "enum" in prop:
        schema["enum"] = prop["enum"]
    return schema


def _model_schema(model: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {k: _property_schema(v) for k, v in model.get("properties", {}).items()},
        "required": list(model.get("required", [])),
    }


@cache
def _validator(model_name: str) -> jsonschema.Draft202012Validator:
    if model_name not in models():
        raise KeyError(f"the contract has no model {model_name!r}")
    schema = {
        "$ref": f"#/$defs/{model_name}",
        "$defs": {name: _model_schema(m) for name, m in models().items()},
    }
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def validate(model_name: str, body: Any) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``body`` is a valid ``model_name``."""
    error = jsonschema.exceptions.best_match(_validator(model_name).iter_errors(body))
    if error is not None:
        raise error


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: dict[str, Any]

    @property
    def query_parameters(self) -> dict[str, dict[str, Any]]:
        return {p["name"]: p for p in self.spec["parameters"] if p["paramType"] == "query"}

    def response_model(self) -> tuple[str, bool]:
        """(model name, whether the answer is an array of it)."""
        if self.spec.get("type") == "array":
            return self.spec["items"]["$ref"], True
        return self.spec["type"], False

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def operations() -> Iterator[Operation]:
    for declaration in declarations():
        for api in declaration["apis"]:
            for op in api["operations"]:
                yield Operation(op["method"], api["path"], op)


def _template(path: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path.rstrip("/"))))


def operation(method: str, path: str) -> Operation:
    """The operation ``method path`` addresses (path relative to the base URL, as sent);
    of several templates matching, the one with the most literal segments."""
    found = [
        op for op in operations() if op.method == method and _template(op.path).fullmatch(path)
    ]
    if not found:
        raise LookupError(f"the contract has no operation {method} {path}")
    return max(found, key=lambda op: sum(not s.startswith("{") for s in op.path.split("/")))


def request_problems(op: Operation, raw_query: str) -> list[str]:
    """What in ``raw_query`` the operation does not allow (OAuth parameters aside): an
    unnamed parameter, a missing required one, a value not in its documented format."""
    sent = dict(parse_qsl(raw_query, keep_blank_values=True))
    sent = {k: v for k, v in sent.items() if not k.startswith("oauth_")}
    named = op.query_parameters
    problems = [f"{op}: {name} is not a parameter of it" for name in sent if name not in named]
    for name, spec in named.items():
        if name not in sent:
            if spec.get("required"):
                problems.append(f"{op}: required {name} missing")
            continue
        pattern = PARAM_FORMATS.get(spec.get("type", "string"), ".*")
        if not re.fullmatch(pattern, sent[name]):
            problems.append(f"{op}: {name}={sent[name]!r} is not a {spec.get('type')}")
    return problems


def field_presence(model_name: str, body: Any, tally: dict[tuple[str, str], list[int]]) -> None:
    """Count, per (model, property), the objects that have the property and those that do
    not, through ``$ref``s and arrays of models: ``tally[(model, prop)] = [present, absent]``."""
    model = models()[model_name]
    for prop, spec in model.get("properties", {}).items():
        counts = tally.setdefault((model_name, prop), [0, 0])
        counts[0 if prop in body else 1] += 1
        if prop not in body:
            continue
        ref = spec.get("$ref") or (spec.get("items") or {}).get("$ref") or spec.get("type")
        if ref not in models():
            continue
        for item in body[prop] if spec.get("type") == "array" else [body[prop]]:
            field_presence(ref, item, tally)
