"""mistral: `[TOOL_CALLS]` with a JSON array (tokenizer v3/v7) or `name[ARGS]{...}` (v11+)."""

from __future__ import annotations

from splitcheck import call, parse_all_ways, text

from vresponses.parsers.mistral import MistralToolParser


def make() -> MistralToolParser:
    return MistralToolParser([])


# Mistral-7B-Instruct-v0.3 (tokenizer v3): the space after the marker is a tokenisation artifact.
V3_OUTPUT = (
    '[TOOL_CALLS] [{"name": "get_current_weather", "arguments": {"location": "Paris, France", "format": "celsius"}}]'
)


def test_v3_json_array() -> None:
    got = parse_all_ways(make, V3_OUTPUT)
    assert got.events == (call(0, "get_current_weather", {"location": "Paris, France", "format": "celsius"}),)


def test_v3_array_with_ids_and_several_calls() -> None:
    output = (
        '[TOOL_CALLS][{"name": "add", "arguments": {"a": 3.5, "b": 4}, "id": "bRQkfW2cE"}, '
        '{"name": "mul", "arguments": {"a": 2, "b": 8}, "id": "Ab3dEf9hI"}]'
    )
    assert parse_all_ways(make, output).events == (call(0, "add", {"a": 3.5, "b": 4}), call(1, "mul", {"a": 2, "b": 8}))


def test_v11_named_calls_with_text_before() -> None:
    # Mistral Small 3.2 / Magistral: one [TOOL_CALLS] per call.
    output = (
        "Let me check both.[TOOL_CALLS]get_current_weather[ARGS]"
        '{"location": "Paris, France", "format": "celsius"}'
        '[TOOL_CALLS]get_time[ARGS]{"timezone": "Europe/Paris"}'
    )
    got = parse_all_ways(make, output)
    assert got.events == (
        text("Let me check both."),
        call(0, "get_current_weather", {"location": "Paris, France", "format": "celsius"}),
        call(1, "get_time", {"timezone": "Europe/Paris"}),
    )


def test_v11_call_id_is_skipped() -> None:
    output = '[TOOL_CALLS]lookup[CALL_ID]a1B2c3D4e[ARGS]{"q": "[ARGS] {inside}"}'
    assert parse_all_ways(make, output).events == (call(0, "lookup", {"q": "[ARGS] {inside}"}),)


def test_text_after_named_call() -> None:
    output = '[TOOL_CALLS]f[ARGS]{"a": {"b": [1]}} and then some text'
    assert parse_all_ways(make, output).events == (call(0, "f", {"a": {"b": [1]}}), text("and then some text"))


def test_marker_followed_by_prose_is_text() -> None:
    output = "[TOOL_CALLS] is how I would call tools"
    assert parse_all_ways(make, output).events == (text(output),)


def test_marker_retried_after_a_failed_name() -> None:
    output = '[TOOL_CALLS]foo[TOOL_CALLS]bar[ARGS]{"x": 1}'
    assert parse_all_ways(make, output).events == (text("[TOOL_CALLS]foo"), call(0, "bar", {"x": 1}))


def test_repeated_marker_is_text_and_the_second_still_counts() -> None:
    output = '[TOOL_CALLS] [TOOL_CALLS]f[ARGS]{"a": 1}'
    assert parse_all_ways(make, output).events == (text("[TOOL_CALLS]"), call(0, "f", {"a": 1}))


def test_bad_array_is_text() -> None:
    for output in ('[TOOL_CALLS][{"name": "f", "arguments": {}}, {"oops": 1}]', '[TOOL_CALLS][{"name": "f",]'):
        assert parse_all_ways(make, output).events == (text(output),), output


def test_unterminated_arguments_are_text() -> None:
    output = '[TOOL_CALLS]f[ARGS]{"a": "b'
    assert parse_all_ways(make, output).events == (text(output),)


def test_overlong_name_is_text() -> None:
    output = "[TOOL_CALLS]" + "n" * 300 + '[ARGS]{"a": 1}'
    assert parse_all_ways(make, output).events == (text(output),)
