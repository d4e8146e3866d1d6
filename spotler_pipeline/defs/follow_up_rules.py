"""The follow-up rules a data engineer edits (``follow_up_rules.yaml``), read and checked
when the code location loads: a mistake is one line naming the rule and the problem, not a
run that fails later."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from spotler_pipeline.warehouse import ALL_TABLES
from spotler_pipeline.warehouse.views import VIEWS

RULES_FILE = Path(__file__).with_name("follow_up_rules.yaml")
RULES_ENV = "SPOTLER_FOLLOW_UP_RULES"
#: Bound by the run itself, not set in ``params``.
BUILT_IN_PARAMS = ("now",)

_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_SPOTLER_NAME = re.compile(r"\bspotler\.([A-Za-z_]\w*)")
_TABLES = {t.name for t in ALL_TABLES}
_TOKENS = re.compile(
    r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/|\$(?P<name>[A-Za-z_]\w*)""", re.DOTALL
)


class FollowUpRuleError(ValueError):
    """A rules file that cannot be used; the message is one line."""


class Action(BaseModel):
    """What to do in Spotler for each new event of a rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["trigger_campaign", "set_property"]
    target: str | None = Field(
        default=None, description="trigger_campaign: the encrypted trigger id."
    )
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="Campaign placeholder (trigger_campaign) or contact property "
        "(set_property) -> the rule's column whose value it gets.",
    )
    enabled: bool = False
    max_sends_per_run: int = Field(default=25, ge=1)

    def label(self) -> str:
        """The action as ``action_log.action`` records it."""
        if self.kind == "trigger_campaign":
            return f"trigger_campaign:{self.target}"
        return "set_property:" + ",".join(self.fields)


class Rule(BaseModel):
    """One follow-up rule: a query over schema ``spotler`` and, optionally, an action."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    query: str
    deps: tuple[str, ...] = ()
    params: dict[str, Any] = Field(default_factory=dict)
    action: Action | None = None

    @field_validator("name")
    @classmethod
    def _a_name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError("a name is lower-case letters, digits and _, starting with a letter")
        return value

    @property
    def dry_run(self) -> bool:
        return self.action is None or not self.action.enabled

    def sql(self, now: Any) -> tuple[str, dict[str, Any]]:
        """The query and the parameters it uses, for a run at ``now``."""
        given = {**self.params, "now": now}
        return self.query, {name: given[name] for name in parameters_of(self.query)}

    def check(self) -> None:
        """Problems a load can see: unknown deps, tables read but not declared, parameters
        without a value, an action missing its target."""
        unknown = [d for d in self.deps if d not in _TABLES]
        if unknown:
            raise ValueError(f"deps names no spotler table: {', '.join(unknown)}")
        read = set(_SPOTLER_NAME.findall(self.query))
        undeclared = sorted(t for t in read if t in _TABLES and t not in self.deps)
        if undeclared:
            raise ValueError(f"its query reads {', '.join(undeclared)}, missing from deps")
        strange = sorted(t for t in read if t not in _TABLES and t not in VIEWS)
        if strange:
            raise ValueError(f"its query reads spotler.{strange[0]}, no such table or view")
        clash = [p for p in BUILT_IN_PARAMS if p in self.params]
        if clash:
            raise ValueError(f"params may not set ${clash[0]} (the run sets it)")
        used = parameters_of(self.query)
        missing = sorted(used - {*self.params, *BUILT_IN_PARAMS})
        if missing:
            raise ValueError(f"its query uses ${missing[0]}, which params does not set")
        unused = sorted(set(self.params) - used)
        if unused:
            raise ValueError(f"params sets {unused[0]}, which its query does not use")
        action = self.action
        if action is not None and action.kind == "trigger_campaign" and not action.target:
            raise ValueError("a trigger_campaign action needs a target (encrypted trigger id)")
        if action is not None and action.kind == "set_property" and not action.fields:
            raise ValueError("a set_property action needs fields (property: column)")


def parameters_of(query: str) -> set[str]:
    """The ``$name`` parameters of ``query`` (outside string literals, quoted names and
    comments)."""
    return {m["name"] for m in _TOKENS.finditer(query) if m["name"]}


def rules_path() -> Path:
    """The rules file: ``SPOTLER_FOLLOW_UP_RULES`` when set, else the bundled one."""
    return Path(os.environ.get(RULES_ENV) or RULES_FILE)


def load_rules(path: Path | None = None) -> list[Rule]:
    """Read and check the rules file; raises :class:`FollowUpRuleError` (one line)."""
    path = path or rules_path()
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        problem = str(exc).splitlines()[0]
        raise FollowUpRuleError(f"{path}: cannot read the follow-up rules: {problem}") from None
    entries = data.get("rules") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise FollowUpRuleError(f"{path}: expected a top-level 'rules:' list")
    return parse_rules(entries, str(path))


def parse_rules(entries: list[Any], source: str = "follow-up rules") -> list[Rule]:
    """Rules from their plain-data form (as the YAML file holds them), checked."""
    rules: list[Rule] = []
    for index, entry in enumerate(entries, start=1):
        name = entry.get("name") if isinstance(entry, dict) else None
        label = f"rule '{name}'" if name else f"rule #{index}"
        try:
            rule = Rule.model_validate(entry)
            rule.check()
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise FollowUpRuleError(f"{source}: {label}: {where}: {first['msg']}") from None
        except ValueError as exc:
            raise FollowUpRuleError(f"{source}: {label}: {exc}") from None
        if any(r.name == rule.name for r in rules):
            raise FollowUpRuleError(f"{source}: {label}: the name is used twice")
        rules.append(rule)
    return rules
