"""Reading a rules file: YAML with line numbers, then the pydantic shape check."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from strongroom.server.rules.model import RulesFile
from strongroom.server.rules.problems import RuleProblem, RulesError


class LineDict(dict[Any, Any]):
    """A YAML mapping that remembers the line of itself and of each key."""

    line: int = 0
    key_lines: dict[Any, int]


class LineList(list[Any]):
    """A YAML sequence that remembers the line of itself and of each item."""

    line: int = 0
    item_lines: list[int]


# libyaml's parser when PyYAML has it (every wheel does): a tenth of the pure-Python parser's
# time, which `serve` pays before it answers `initialize`. Resolution and construction stay safe.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeLoader):  # type: ignore[misc,valid-type]  # PyYAML ships no type hints
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain value", key_node.start_mark
            )
        if key in out:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (the first is on line {out.key_lines[key]})",
                key_node.start_mark,
            )
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


# YAML 1.2 booleans: only true/false. YAML 1.1 would read `no`, `off` and `yes` as booleans,
# which turns `fail_reason: no` or an enum value `on` into something the operator did not write.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def read_yaml(path: Path) -> Any:
    """The parsed file, with line numbers attached to its mappings and sequences."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RulesError([RuleProblem(path, "rules file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError([RuleProblem(path, f"cannot read the rules file: {exc}")]) from None
    try:
        return yaml.load(text, Loader=_Loader)  # a (C)SafeLoader subclass: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise RulesError([RuleProblem(path, f"invalid YAML: {problem}", line=line)]) from None
    except yaml.YAMLError as exc:
        raise RulesError([RuleProblem(path, f"invalid YAML: {exc}")]) from None


def line_of(data: Any, loc: Sequence[str | int]) -> int | None:
    """The line of the deepest element of ``loc`` that the YAML tree knows."""
    line: int | None = getattr(data, "line", None)
    node = data
    for part in loc:
        if isinstance(node, LineDict) and part in node:
            line = node.key_lines.get(part, line)
            node = node[part]
        elif isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node):
            line = node.item_lines[part]
            node = node[part]
        else:
            break
    return line


def load_rules_file(path: Path) -> tuple[RulesFile, Any]:
    """The validated rules file and its raw tree (for line numbers later)."""
    data = read_yaml(path)
    if data is None:
        data = LineDict()
    if not isinstance(data, dict):
        raise RulesError([RuleProblem(path, "the rules file must be a mapping with `rule_sets:`", line=1)])
    try:
        return RulesFile.model_validate(data), data
    except ValidationError as exc:
        raise RulesError(problems_from_validation(path, exc, data)) from None


def problems_from_validation(path: Path, exc: ValidationError, data: Any) -> list[RuleProblem]:
    problems = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        rule_set = rule = None
        rest: list[str | int] = list(loc)
        if len(loc) >= 2 and loc[0] == "rule_sets":
            rule_set = str(loc[1])
            rest = list(loc[2:])
            if len(rest) >= 2 and rest[0] == "rules" and isinstance(rest[1], int):
                rule = _rule_label(data, str(loc[1]), rest[1])
                rest = rest[2:]
        elif len(loc) >= 3 and loc[0] == "answer_policies" and isinstance(loc[2], int):
            rule = _policy_label(data, str(loc[1]), loc[2])
            rest = [loc[1], *loc[3:]]
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif msg.startswith("Value error, "):
            msg = msg.removeprefix("Value error, ")
        where = ".".join(str(p) for p in rest) or None
        problems.append(
            RuleProblem(path, msg, line=line_of(data, loc), rule_set=rule_set, rule=rule, where=where)
        )
    return problems


def _rule_label(data: Any, rule_set: str, index: int) -> str:
    try:
        rule_id = data["rule_sets"][rule_set]["rules"][index]["id"]
    except (KeyError, IndexError, TypeError):
        rule_id = None
    return f"rule {rule_id!r}" if isinstance(rule_id, str) else f"rule #{index + 1}"


def _policy_label(data: Any, kind: str, index: int) -> str:
    try:
        policy_id = data["answer_policies"][kind][index]["id"]
    except (KeyError, IndexError, TypeError):
        policy_id = None
    return f"{kind} policy {policy_id!r}" if isinstance(policy_id, str) else f"{kind} policy #{index + 1}"
