"""Qwen3-Coder XML tool calls: `<tool_call><function=NAME><parameter=KEY>VALUE</parameter>…</function></tool_call>`,
with values typed by the tool's JSON Schema."""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Mapping, Sequence

from vresponses.parsers.base import ToolSpec, tool_parser
from vresponses.parsers.calls import MISSING, Call, StreamingToolParser, load_json
from vresponses.parsers.stream import Seeker

BEGIN = "<tool_call>"
END = "</tool_call>"
FUNCTION = "<function="
FUNCTION_END = "</function>"
PARAMETER = "<parameter="
PARAMETER_END = "</parameter>"

# Checked in this order, as a value that is valid for several types should get the most specific one.
_PRIORITY = ("null", "integer", "number", "boolean", "object", "array")


def schema_types(schema: object) -> set[str]:
    """The JSON types a property schema allows, following anyOf/oneOf and enum values; empty if unknown."""
    if not isinstance(schema, Mapping):
        return set()
    types: set[str] = set()
    declared = schema.get("type")
    if isinstance(declared, str):
        types.add(declared)
    elif isinstance(declared, list):
        types.update(t for t in declared if isinstance(t, str))
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list):
            for option in options:
                types |= schema_types(option)
    enum = schema.get("enum")
    if not types and isinstance(enum, list):
        names = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}
        types.update(names[type(v)] for v in enum if type(v) in names)
    return types


def _json_safe(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_json_safe(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_safe(v) for k, v in value.items())
    return value is None or isinstance(value, str | int | bool)


def _as_type(raw: str, kind: str) -> object:
    """raw converted to one JSON type, or MISSING when it is not a value of that type."""
    text = raw.strip()
    if kind == "null":
        return None if text == "null" else MISSING
    if kind == "boolean":
        return {"true": True, "false": False}.get(text.lower(), MISSING)
    if kind in ("integer", "number"):
        value = load_json(text)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return MISSING
        if kind == "integer" and isinstance(value, float):
            return int(value) if value.is_integer() else MISSING
        return value
    value = load_json(text)
    if value is MISSING:
        # The model sometimes writes Python literals ('single quotes', True) for objects and arrays.
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return MISSING
        if isinstance(value, tuple):
            value = list(value)
        if not _json_safe(value):
            return MISSING
    wanted = dict if kind == "object" else list
    return value if isinstance(value, wanted) else MISSING


def convert(raw: str, schema: object) -> object:
    """A parameter value typed by its schema; kept as the raw string when the type is unknown or it fails."""
    types = schema_types(schema)
    for kind in _PRIORITY:
        if kind in types:
            value = _as_type(raw, kind)
            if value is not MISSING:
                return value
    return raw


def _unwrap(value: str) -> str:
    # The template writes each value on its own line: one newline on each side is markup.
    value = value.removeprefix("\n")
    return value.removesuffix("\n")


def parse_function(body: str, tools: Mapping[str, Mapping[str, object]]) -> Call | None:
    """Read `<function=NAME>` + parameters + `</function>` (nothing else but whitespace) into a call."""
    body = body.strip()
    if not body.startswith(FUNCTION) or not body.endswith(FUNCTION_END):
        return None
    close = body.find(">")
    name = body[len(FUNCTION) : close].strip()
    if close < 0 or not name:
        return None
    inner = body[close + 1 : len(body) - len(FUNCTION_END)]
    properties = tools.get(name, {})
    arguments: dict[str, object] = {}
    pos = 0
    # Each search moves forward only, so a body full of unclosed parameters stays linear.
    next_end = inner.find(PARAMETER_END)
    while True:
        start = inner.find(PARAMETER, pos)
        if start < 0:
            return Call(name, json.dumps(arguments, ensure_ascii=False)) if not inner[pos:].strip() else None
        if inner[pos:start].strip():
            return None
        key_end = inner.find(">", start)
        if key_end < 0:
            return None
        key = inner[start + len(PARAMETER) : key_end].strip()
        if 0 <= next_end < key_end:
            next_end = inner.find(PARAMETER_END, key_end)
        if not key:
            return None
        following = inner.find(PARAMETER, key_end)
        if next_end >= 0 and (following < 0 or next_end < following):
            value, pos = inner[key_end + 1 : next_end], next_end + len(PARAMETER_END)
            next_end = inner.find(PARAMETER_END, pos)
        elif following >= 0:
            # A parameter without its closing tag: the next one ends it, as vLLM and the model agree.
            value, pos = inner[key_end + 1 : following], following
        else:
            return None
        arguments[key] = convert(_unwrap(value), properties.get(key))


def _properties(tools: Sequence[ToolSpec]) -> dict[str, Mapping[str, object]]:
    table: dict[str, Mapping[str, object]] = {}
    for tool in tools:
        props = tool.parameters.get("properties")
        table[tool.name] = props if isinstance(props, Mapping) else {}
    return table


@tool_parser
class Qwen3CoderToolParser(StreamingToolParser):
    """Each `<tool_call>` block ends at the first `</tool_call>` and is parsed whole; values are typed with
    the offered tool's schema (integer, number, boolean, null, object, array), other values stay strings."""

    name = "qwen3_coder"
    call_format = None

    def __init__(self, tools: Sequence[ToolSpec]) -> None:
        super().__init__(tools)
        self._properties = _properties(tools)
        self._opener = Seeker(BEGIN)
        self._closer = Seeker(END)
        self._goto(self._in_text, self._end_text)

    def _parse_body(self, body: str) -> list[Call] | None:
        call = parse_function(body, self._properties)
        return None if call is None else [call]
