"""llama3_json: Llama 3.1/3.2 JSON tool calls, with or without `<|python_tag|>`, joined by `; `."""

from __future__ import annotations

from splitcheck import call, parse_all_ways, text

from vresponses.parsers.llama3_json import Llama3JsonToolParser


def make() -> Llama3JsonToolParser:
    return Llama3JsonToolParser([])


# Meta's Llama 3.1 prompt-format guide, JSON-based tool calling (the eot token is stripped by the engine).
LLAMA31_CALL = (
    '{"name": "get_current_conditions", "parameters": {"location": "San Francisco, CA", "unit": "Fahrenheit"}}'
)


def test_llama31_json_call() -> None:
    got = parse_all_ways(make, LLAMA31_CALL)
    assert got.events == (call(0, "get_current_conditions", {"location": "San Francisco, CA", "unit": "Fahrenheit"}),)


def test_python_tag_prefix_and_semicolon_separated_calls() -> None:
    output = (
        '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}; '
        '{"name": "get_time", "parameters": {"tz": "Europe/Paris"}}'
    )
    got = parse_all_ways(make, output)
    assert got.events == (call(0, "get_weather", {"city": "Paris"}), call(1, "get_time", {"tz": "Europe/Paris"}))


def test_text_before_python_tag_and_after_calls() -> None:
    output = 'Let me check.\n<|python_tag|>{"name": "f", "arguments": {"a": [1, {"b": "}"}]}}\n\nHere you go.'
    got = parse_all_ways(make, output)
    assert got.events == (text("Let me check."), call(0, "f", {"a": [1, {"b": "}"}]}), text("Here you go."))


def test_leading_whitespace_before_a_call_is_dropped() -> None:
    assert parse_all_ways(make, '\n  {"name": "f", "parameters": {}}\n').events == (call(0, "f", {}),)


def test_json_that_is_not_a_call_is_text() -> None:
    output = '  {"answer": 42, "name": 7}'
    assert parse_all_ways(make, output).events == (text(output),)


def test_brace_text_is_text() -> None:
    output = "{curly} braces are fine, so is a {half open"
    assert parse_all_ways(make, output).events == (text(output),)


def test_json_mid_text_without_tag_is_text() -> None:
    output = 'The call would be {"name": "f", "parameters": {}} if needed.'
    assert parse_all_ways(make, output).events == (text(output),)


def test_builtin_tool_code_after_python_tag_is_text() -> None:
    output = '<|python_tag|>brave_search.call(query="current weather in Menlo Park")'
    assert parse_all_ways(make, output).events == (text(output),)


def test_unterminated_object_is_text() -> None:
    output = '{"name": "f", "parameters": {"a": "unterminated'
    assert parse_all_ways(make, output).events == (text(output),)


def test_second_object_malformed_keeps_first_call() -> None:
    output = '{"name": "f", "parameters": {}}; {"name": 3}'
    got = parse_all_ways(make, output)
    assert got.events == (call(0, "f", {}), text('; {"name": 3}'))


def test_dangling_separator_is_text() -> None:
    assert parse_all_ways(make, '{"name": "f", "parameters": {}};').events == (call(0, "f", {}), text(";"))
