"""Tool checks, the forced-call constraint, and argument validation."""

from __future__ import annotations

import json

import pytest

from vresponses.errors import InvalidRequest
from vresponses.parsers import TOOL_PARSERS
from vresponses.parsers.base import ToolSpec
from vresponses.pipeline.request import ToolChoice
from vresponses.pipeline.tools import FORCED_STRING_MAX, arguments_valid, bounded, check_tools, constraint

CITY = ToolSpec("weather", None, {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


def test_bounded_adds_max_length_only_where_none_is_set() -> None:
    schema = {"type": "object", "properties": {
        "a": {"type": "string"}, "b": {"type": "string", "maxLength": 3}, "c": {"type": "string", "enum": ["x"]},
        "d": {"type": "array", "items": {"type": ["string", "null"]}}, "e": {"type": "string", "pattern": "^x$"},
    }}  # fmt: skip
    props = bounded(schema)["properties"]
    assert props["a"]["maxLength"] == FORCED_STRING_MAX and props["b"]["maxLength"] == 3
    assert "maxLength" not in props["c"] and "maxLength" not in props["e"]
    assert props["d"]["items"]["maxLength"] == FORCED_STRING_MAX
    assert "maxLength" not in schema["properties"]["a"]  # the caller's schema is untouched


def test_structural_tag_in_the_parser_format() -> None:
    c = constraint([CITY], parallel=False, fmt=TOOL_PARSERS["hermes"].call_format)
    tag = json.loads(c.structural_tag or "")
    body = tag["format"]
    assert body["type"] == "tags_with_separator" and body["stop_after_first"] is True
    inner = body["tags"][0]
    assert (inner["begin"], inner["end"]) == ("<tool_call>\n", "\n</tool_call>")
    assert inner["content"]["json_schema"]["properties"]["name"] == {"const": "weather"}


def test_prefix_suffix_formats_wrap_a_sequence() -> None:
    c = constraint([CITY, CITY], parallel=True, fmt=TOOL_PARSERS["mistral"].call_format)
    body = json.loads(c.structural_tag or "")["format"]
    assert body["type"] == "sequence" and body["elements"][0] == {"type": "const_string", "value": "[TOOL_CALLS]["}
    assert "anyOf" in body["elements"][1]["tags"][0]["content"]["json_schema"]


def test_raw_json_constraint_without_a_format() -> None:
    assert constraint([CITY], parallel=False, fmt=None).json["properties"]["name"] == {"const": "weather"}  # type: ignore[index]
    assert constraint([CITY], parallel=True, fmt=None).json["type"] == "array"  # type: ignore[index]


def test_arguments_valid() -> None:
    assert arguments_valid(CITY, '{"city": "Paris"}')
    assert not arguments_valid(CITY, '{"town": "Paris"}')
    assert not arguments_valid(CITY, '"Paris"')
    assert not arguments_valid(CITY, "{")
    assert not arguments_valid(None, "{}")


@pytest.mark.parametrize(
    ("tools", "choice", "param"),
    [
        ([ToolSpec("a b")], ToolChoice(), "tools[0].name"),
        ([ToolSpec("x" * 65)], ToolChoice(), "tools[0].name"),
        ([ToolSpec("a"), ToolSpec("a")], ToolChoice(), "tools[1].name"),
        ([ToolSpec("a", None, {"type": "string"})], ToolChoice(), "tools[0].parameters"),
        ([ToolSpec("a", None, {"type": "object", "properties": 3})], ToolChoice(), "tools[0].parameters"),
        ([], ToolChoice("required"), "tool_choice"),
        ([ToolSpec("a")], ToolChoice("function", "b"), "tool_choice"),
    ],
)
def test_check_tools_rejects(tools: list[ToolSpec], choice: ToolChoice, param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        check_tools(tools, choice)
    assert info.value.param == param
