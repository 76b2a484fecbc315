"""hermes: Qwen2.5/Qwen3 `<tool_call>` JSON blocks, streamed and whole through one implementation."""

from __future__ import annotations

from splitcheck import call, parse_all_ways, text

from vresponses.parsers.base import Text, ToolCallChunk
from vresponses.parsers.hermes import HermesToolParser


def make() -> HermesToolParser:
    return HermesToolParser([])


# Qwen2.5's function-calling guide: two parallel calls, as the model writes them.
QWEN25_TWO_CALLS = (
    "<tool_call>\n"
    '{"name": "get_current_temperature", "arguments": {"location": "San Francisco, CA, USA"}}\n'
    "</tool_call>\n"
    "<tool_call>\n"
    '{"name": "get_temperature_date", "arguments": {"location": "San Francisco, CA, USA", "date": "2024-10-01"}}\n'
    "</tool_call>"
)


def test_qwen25_parallel_calls() -> None:
    got = parse_all_ways(make, QWEN25_TWO_CALLS)
    assert got.events == (
        call(0, "get_current_temperature", {"location": "San Francisco, CA, USA"}),
        call(1, "get_temperature_date", {"location": "San Francisco, CA, USA", "date": "2024-10-01"}),
    )


def test_text_before_between_and_after_calls() -> None:
    output = (
        "I'll look up the weather first.\n\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "東京"}}\n</tool_call>\n'
        "and then the time:\n"
        '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>\n'
        "Done."
    )
    got = parse_all_ways(make, output)
    assert got.events == (
        text("I'll look up the weather first."),
        call(0, "get_weather", {"city": "東京"}),
        text("and then the time:"),
        call(1, "get_time", {}),
        text("Done."),
    )
    # Non-ASCII stays as is in the argument string.
    assert '"東京"' in got.events[1][3]  # type: ignore[misc]


def test_plain_text_passes_through_unchanged() -> None:
    output = "No tools needed: 2 < 3 and <b>bold</b> stays.\n"
    assert parse_all_ways(make, output).events == (text(output),)


def test_arguments_are_normalised() -> None:
    output = '<tool_call>\n{"arguments":{"b":[1,2],"a":{"x":null}},"name":"f"}\n</tool_call>'
    got = parse_all_ways(make, output)
    assert got.events == (("call", 0, "f", '{"b": [1, 2], "a": {"x": null}}'),)


def test_parameters_alias_string_arguments_and_missing_arguments() -> None:
    output = (
        '<tool_call>\n{"name": "a", "parameters": {"x": 1}}\n</tool_call>\n'
        '<tool_call>\n{"name": "b", "arguments": "{\\"y\\": 2}"}\n</tool_call>\n'
        '<tool_call>\n{"name": "c"}\n</tool_call>'
    )
    assert parse_all_ways(make, output).events == (call(0, "a", {"x": 1}), call(1, "b", {"y": 2}), call(2, "c", {}))


def test_bad_json_is_replayed_as_text_and_later_calls_still_parse() -> None:
    bad = '<tool_call>\n{"name": "f", "arguments": {"a": 1}\n</tool_call>'
    output = f"Try: {bad}\n<tool_call>\n" + '{"name": "g", "arguments": {}}\n</tool_call>'
    got = parse_all_ways(make, output)
    assert got.events == (text(f"Try: {bad}"), call(0, "g", {}))


def test_not_a_call_object_is_text() -> None:
    for body in ('{"arguments": {}}', '{"name": "", "arguments": {}}', '{"name": "f", "arguments": [1]}', "[]", "7"):
        output = f"<tool_call>{body}</tool_call>"
        assert parse_all_ways(make, output).events == (text(output),), body


def test_unterminated_call_is_text_at_finish() -> None:
    output = 'Calling <tool_call>\n{"name": "f", "arguments": {"a": "half'
    got = parse_all_ways(make, output)
    assert got.events == (text(output),)


def test_partial_tag_at_end_is_text() -> None:
    assert parse_all_ways(make, "see <tool_ca").events == (text("see <tool_ca"),)


def test_streaming_emits_text_early_and_holds_only_the_possible_tag() -> None:
    parser = make()
    assert parser.feed("Checking now") == [Text("Checking now")]
    assert parser.feed(" <tool_") == []
    assert parser.feed('call>\n{"name": "f", ') == []
    assert parser.feed('"arguments": {"q": "<tool_call>"}}\n</tool_') == []
    assert parser.feed("call>") == [ToolCallChunk(0, "f", '{"q": "<tool_call>"}')]
    assert parser.finish() == []


def test_whole_output_in_one_feed_is_the_non_streaming_path() -> None:
    parser = make()
    pieces = parser.feed(QWEN25_TWO_CALLS) + parser.finish()
    assert [p.index for p in pieces if isinstance(p, ToolCallChunk)] == [0, 1]
    assert all(isinstance(p, ToolCallChunk) and p.name for p in pieces)


def test_tags_quoted_inside_arguments_do_not_end_the_call() -> None:
    output = (
        '<tool_call>\n{"name": "explain", "arguments": {"text": "wrap calls in <tool_call>...</tool_call>"}}'
        "\n</tool_call>"
    )
    got = parse_all_ways(make, output)
    assert got.events == (call(0, "explain", {"text": "wrap calls in <tool_call>...</tool_call>"}),)


def test_unbalanced_quote_runs_to_the_end_as_text() -> None:
    # The price of reading tags inside strings: the rest of the output is inside "a string", so text.
    output = '<tool_call>{"name": "f, "arguments": {}}</tool_call> tail <tool_call>{"name": "g"}</tool_call>'
    assert parse_all_ways(make, output).events == (text(output),)
