"""Tool definitions: checking them, constraining forced calls to them, and validating the calls made."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from vresponses.engines.base import Constraint
from vresponses.errors import InvalidRequest
from vresponses.parsers.base import CallFormat, ToolSpec
from vresponses.pipeline.render import SEARCH_TOOL
from vresponses.pipeline.request import TextFormat, ToolChoice
from vresponses.pipeline.schemas import check_schema, validates

NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
EMPTY_PARAMETERS: Mapping[str, object] = {"type": "object", "properties": {}}


def check_tools(tools: Sequence[ToolSpec], choice: ToolChoice) -> None:
    """Raise InvalidRequest for bad names, duplicates, invalid schemas, or a choice the tools can't meet."""
    seen: set[str] = set()
    for i, tool in enumerate(tools):
        if not NAME.fullmatch(tool.name):
            raise InvalidRequest(
                f"Invalid tool name {tool.name!r}: use 1-64 characters from a-z, A-Z, 0-9, '_' and '-'.",
                param=f"tools[{i}].name",
            )
        if tool.name in seen:
            raise InvalidRequest(f"Duplicate tool name {tool.name!r}.", param=f"tools[{i}].name")
        seen.add(tool.name)
        check_parameters(tool.parameters, f"tools[{i}].parameters")
    if choice.mode == "required" and not tools:
        raise InvalidRequest("tool_choice 'required' needs at least one tool in 'tools'.", param="tool_choice")
    if choice.mode == "function" and choice.name not in seen:
        raise InvalidRequest(
            f"tool_choice names function {choice.name!r}, which is not in 'tools'.", param="tool_choice"
        )
    missing = [name for name in choice.allowed if name not in seen]
    if missing:
        raise InvalidRequest(
            f"tool_choice.tools names {', '.join(map(repr, missing))}, not in 'tools'.", param="tool_choice.tools"
        )


def offered_tools(tools: Sequence[ToolSpec], choice: ToolChoice) -> tuple[ToolSpec, ...]:
    """The tools the model is shown: none for `none`, the allowed subset for `allowed_tools`, else all."""
    if choice.mode == "none":
        return ()
    if choice.mode == "allowed_tools":
        return tuple(t for t in tools if t.name in choice.allowed)
    return tuple(tools)


def check_output_format(text: TextFormat) -> None:
    """Raise InvalidRequest unless a json_schema output format carries a valid schema."""
    if text.type == "json_schema":
        if not text.schema:
            raise InvalidRequest("A json_schema text format needs 'schema'.", param="text.format.schema")
        check_schema(text.schema, "text.format.schema")


def output_schema(text: TextFormat) -> dict[str, Any] | None:
    """The JSON Schema the output must follow, or None for plain text."""
    if text.type == "json_object":
        return {"type": "object"}
    if text.type == "json_schema":
        return dict(text.schema or {})
    return None


def check_parameters(schema: Mapping[str, object], param: str) -> None:
    """Raise InvalidRequest unless schema is a valid, self-contained JSON Schema describing an object."""
    check_schema(schema, param)
    kind = schema.get("type", "object")
    if kind != "object":
        raise InvalidRequest("A function's parameters must be a JSON Schema of type 'object'.", param=param)


# Strings in a forced call that set no bound of their own get this one in the grammar (not in validation):
# a small model can open a string and never close it, and a bound makes every forced call end well-formed.
FORCED_STRING_MAX = 512
_STRING_BOUNDS = ("maxLength", "pattern", "format", "enum", "const")


def bounded(schema: Any) -> Any:
    """A copy of schema whose unbounded string schemas get maxLength FORCED_STRING_MAX."""
    if isinstance(schema, list):
        return [bounded(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: bounded(v) for k, v in schema.items()}
    kind = schema.get("type")
    is_string = kind == "string" or (isinstance(kind, list) and "string" in kind)
    if is_string and not any(k in schema for k in _STRING_BOUNDS):
        out["maxLength"] = FORCED_STRING_MAX
    return out


def call_schema(tool: ToolSpec, fmt: CallFormat) -> dict[str, Any]:
    """The JSON Schema of one call object to this tool in the given format, as the grammar enforces it."""
    return {
        "type": "object",
        "properties": {fmt.name_key: {"const": tool.name}, fmt.args_key: bounded(dict(tool.parameters))},
        "required": [fmt.name_key, fmt.args_key],
        "additionalProperties": False,
    }


def forced_tools(tools: Sequence[ToolSpec], choice: ToolChoice) -> tuple[ToolSpec, ...]:
    """The tools a forced choice allows: the named one (web_search names the built-in search), or all for `required`;
    empty when not forced."""
    if choice.mode in ("function", "web_search"):
        name = choice.name if choice.mode == "function" else SEARCH_TOOL
        return tuple(t for t in tools if t.name == name)
    if choice.mode == "required":
        return tuple(tools)
    if choice.mode == "allowed_tools" and choice.require:
        return tuple(t for t in tools if t.name in choice.allowed)
    return ()


def constraint(allowed: Sequence[ToolSpec], parallel: bool, fmt: CallFormat | None) -> Constraint:
    """Constrain output to calls of `allowed` tools: in the parser's format, or as raw JSON calls without one."""
    fmt_or_json = fmt or CallFormat(prefix="", begin="", end="", separator="", suffix="")
    schemas = [call_schema(t, fmt_or_json) for t in allowed]
    one: dict[str, Any] = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    if fmt is None:
        # Raw JSON: one call object, or a non-empty array of them when several calls are allowed.
        if not parallel:
            return Constraint(json=one)
        return Constraint(json={"type": "array", "items": one, "minItems": 1})
    tag = {
        "type": "tag",
        "begin": fmt.begin,
        "content": {"type": "json_schema", "json_schema": one},
        "end": fmt.end,
    }
    calls = {
        "type": "tags_with_separator",
        "tags": [tag],
        "separator": fmt.separator,
        "at_least_one": True,
        "stop_after_first": not parallel,
    }
    elements: list[dict[str, Any]] = []
    if fmt.prefix:
        elements.append({"type": "const_string", "value": fmt.prefix})
    elements.append(calls)
    if fmt.suffix:
        elements.append({"type": "const_string", "value": fmt.suffix})
    body = elements[0] if len(elements) == 1 else {"type": "sequence", "elements": elements}
    return Constraint(structural_tag=json.dumps({"type": "structural_tag", "format": body}))


def arguments_valid(tool: ToolSpec | None, arguments: str) -> bool:
    """Whether arguments is a JSON object that validates against the tool's parameters."""
    if tool is None:
        return False
    try:
        value = json.loads(arguments)
    except ValueError:
        return False
    if not isinstance(value, dict):
        return False
    return validates(tool.parameters, value)
