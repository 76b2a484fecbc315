"""qwen3_coder: Qwen3-Coder XML calls with schema-typed parameter values."""

from __future__ import annotations

from splitcheck import call, parse_all_ways, text

from vresponses.parsers.base import ToolSpec
from vresponses.parsers.qwen3_coder import Qwen3CoderToolParser, convert

TOOLS = [
    ToolSpec(
        "get_weather",
        parameters={
            "type": "object",
            "properties": {
                "location": {"type": "string"},
                "days": {"type": "integer"},
                "threshold": {"type": "number"},
                "metric": {"type": "boolean"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "options": {"type": "object"},
                "note": {"type": ["string", "null"]},
                "zip": {"type": "string"},
            },
        },
    ),
    ToolSpec("write_file", parameters={"type": "object", "properties": {"path": {"type": "string"}}}),
]


def make() -> Qwen3CoderToolParser:
    return Qwen3CoderToolParser(TOOLS)


# The layout Qwen3-Coder's chat template writes for an assistant call (and the model reproduces).
QWEN3_CODER_CALL = (
    "<tool_call>\n<function=get_weather>\n"
    "<parameter=location>\nSan Francisco\n</parameter>\n"
    "<parameter=days>\n3\n</parameter>\n"
    "</function>\n</tool_call>"
)


def test_qwen3_coder_call_with_typed_values() -> None:
    got = parse_all_ways(make, QWEN3_CODER_CALL)
    assert got.events == (call(0, "get_weather", {"location": "San Francisco", "days": 3}),)


def test_every_schema_type() -> None:
    output = (
        "Sure.\n<tool_call>\n<function=get_weather>\n"
        "<parameter=threshold>\n2.5\n</parameter>\n"
        "<parameter=metric>\nTrue\n</parameter>\n"
        '<parameter=tags>\n["a", "b"]\n</parameter>\n'
        "<parameter=options>\n{'units': 'si', 'n': 2}\n</parameter>\n"
        "<parameter=note>\nnull\n</parameter>\n"
        "<parameter=zip>\n02139\n</parameter>\n"
        "<parameter=unknown>\n42\n</parameter>\n"
        "</function>\n</tool_call>"
    )
    got = parse_all_ways(make, output)
    assert got.events == (
        text("Sure."),
        call(
            0,
            "get_weather",
            {
                "threshold": 2.5,
                "metric": True,
                "tags": ["a", "b"],
                "options": {"units": "si", "n": 2},
                "note": None,
                # Declared strings stay strings even when they look like numbers; unknown keys too.
                "zip": "02139",
                "unknown": "42",
            },
        ),
    )


def test_multiline_string_value_keeps_inner_newlines() -> None:
    output = (
        "<tool_call>\n<function=write_file>\n<parameter=path>\n/tmp/a.py\n</parameter>\n"
        "<parameter=content>\n\ndef f():\n    return '<b>'\n\n</parameter>\n</function>\n</tool_call>"
    )
    got = parse_all_ways(make, output)
    assert got.events == (call(0, "write_file", {"path": "/tmp/a.py", "content": "\ndef f():\n    return '<b>'\n"}),)


def test_two_calls_and_unknown_tool() -> None:
    output = (
        "<tool_call>\n<function=get_weather>\n<parameter=days>\nseven\n</parameter>\n</function>\n</tool_call>\n"
        "<tool_call>\n<function=other>\n<parameter=days>\n7\n</parameter>\n</function>\n</tool_call>"
    )
    got = parse_all_ways(make, output)
    # "seven" is not an integer: kept as the string rather than dropped.
    assert got.events == (call(0, "get_weather", {"days": "seven"}), call(1, "other", {"days": "7"}))


def test_missing_parameter_close_is_ended_by_the_next_parameter() -> None:
    output = (
        "<tool_call>\n<function=get_weather>\n<parameter=location>\nOslo\n"
        "<parameter=days>\n2\n</parameter>\n</function>\n</tool_call>"
    )
    assert parse_all_ways(make, output).events == (call(0, "get_weather", {"location": "Oslo", "days": 2}),)


def test_malformed_blocks_are_text() -> None:
    for body in (
        "<function=get_weather>\n<parameter=days>\n1\n</parameter>\n",  # no </function>
        "<parameter=days>\n1\n</parameter>\n</function>",  # no <function=
        "<function=>\n</function>",  # empty name
        "<function=f>\nstray text\n</function>",
    ):
        output = f"<tool_call>\n{body}\n</tool_call>"
        assert parse_all_ways(make, output).events == (text(output),), body


def test_unterminated_call_is_text() -> None:
    output = QWEN3_CODER_CALL.removesuffix("</tool_call>")
    assert parse_all_ways(make, output).events == (text(output),)


def test_convert_edge_cases() -> None:
    assert convert("1e3", {"type": "integer"}) == 1000
    assert convert("1.5", {"type": "integer"}) == "1.5"
    assert convert("nan", {"type": "number"}) == "nan"
    assert convert("FALSE", {"type": "boolean"}) is False
    assert convert("3", {"anyOf": [{"type": "integer"}, {"type": "string"}]}) == 3
    assert convert("x", {"enum": ["x", "y"]}) == "x"
    assert convert("[1, 2", {"type": "array"}) == "[1, 2"
    assert convert("{1, 2}", {"type": "object"}) == "{1, 2}"
