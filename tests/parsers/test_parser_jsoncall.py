"""json: output constrained to raw JSON calls, one object or an array of them."""

from __future__ import annotations

from splitcheck import call, parse_all_ways, text

from vresponses.parsers.jsoncall import JsonCallParser


def make() -> JsonCallParser:
    return JsonCallParser([])


def test_single_object() -> None:
    output = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
    assert parse_all_ways(make, output).events == (call(0, "get_weather", {"city": "Paris"}),)


def test_array_of_calls_with_whitespace() -> None:
    output = '\n[ {"name": "a", "arguments": {"x": "]"}},\n  {"name": "b", "arguments": {}} ]\n'
    assert parse_all_ways(make, output).events == (call(0, "a", {"x": "]"}), call(1, "b", {}))


def test_empty_array_is_text() -> None:
    # Constrained output asks for at least one call, so an empty array is not a call list.
    assert parse_all_ways(make, " [] ").events == (text(" [] "),)


def test_non_call_json_and_text_are_text() -> None:
    for output in ('{"city": "Paris"}', "[1, 2]", "I cannot call tools.", '[{"name": "a", "arguments": {}}, 5]'):
        assert parse_all_ways(make, output).events == (text(output),), output


def test_trailing_text_after_the_value_is_text() -> None:
    output = '{"name": "f", "arguments": {}} trailing'
    assert parse_all_ways(make, output).events == (call(0, "f", {}), text("trailing"))


def test_truncated_value_is_text() -> None:
    output = '[{"name": "f", "arguments": {"a": 1}}, {"name": "g", "argu'
    assert parse_all_ways(make, output).events == (text(output),)
