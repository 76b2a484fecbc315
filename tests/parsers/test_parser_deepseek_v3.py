"""deepseek_v3: DeepSeek-V3 tool-call tokens with fenced JSON arguments."""

from __future__ import annotations

from splitcheck import call, parse_all_ways, text

from vresponses.parsers.deepseek_v3 import DeepSeekV3ToolParser

BEGIN, END = "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"
CALL, CALL_END, SEP = "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", "<｜tool▁sep｜>"


def make() -> DeepSeekV3ToolParser:
    return DeepSeekV3ToolParser([])


def entry(name: str, arguments: str) -> str:
    """One call exactly as DeepSeek-V3's chat template writes it."""
    return f"{CALL}function{SEP}{name}\n```json\n{arguments}\n```{CALL_END}"


def test_deepseek_v3_single_call() -> None:
    output = BEGIN + entry("get_weather", '{"location": "Hangzhou"}') + END
    assert parse_all_ways(make, output).events == (call(0, "get_weather", {"location": "Hangzhou"}),)


def test_text_then_two_calls_separated_by_newline() -> None:
    output = (
        "I'll check both cities.\n\n"
        + BEGIN
        + entry("get_weather", '{"location": "Hangzhou"}')
        + "\n"
        + entry("get_weather", '{"location": "Beijing", "unit": "c"}')
        + END
    )
    got = parse_all_ways(make, output)
    assert got.events == (
        text("I'll check both cities."),
        call(0, "get_weather", {"location": "Hangzhou"}),
        call(1, "get_weather", {"location": "Beijing", "unit": "c"}),
    )


def test_pretty_printed_arguments_and_text_after_block() -> None:
    arguments = '{\n  "query": "```code```",\n  "limit": 3\n}'
    output = BEGIN + entry("search", arguments) + END + "\nSearching now."
    got = parse_all_ways(make, output)
    assert got.events == (call(0, "search", {"query": "```code```", "limit": 3}), text("Searching now."))


def test_v31_layout_is_accepted() -> None:
    output = f'{BEGIN}{CALL}get_time{SEP}{{"tz": "UTC"}}{CALL_END}{END}'
    assert parse_all_ways(make, output).events == (call(0, "get_time", {"tz": "UTC"}),)


def test_malformed_entry_is_text_with_its_markers() -> None:
    bad = entry("get_weather", '{"location": }')
    output = BEGIN + bad + entry("ok", "{}") + bad + END
    assert parse_all_ways(make, output).events == (text(bad), call(0, "ok", {}), text(bad))


def test_unterminated_entry_is_text() -> None:
    output = BEGIN + f'{CALL}function{SEP}get_weather\n```json\n{{"location": "Hang'
    assert parse_all_ways(make, output).events == (text(output),)


def test_block_without_a_good_call_is_text_whole() -> None:
    output = "Hmm " + BEGIN + entry("f", "{bad}") + "stray" + END + " after"
    assert parse_all_ways(make, output).events == (text(output),)


def test_end_marker_inside_a_json_string_does_not_end_the_entry() -> None:
    output = BEGIN + entry("echo", '{"text": "' + CALL_END + END + '"}') + END
    assert parse_all_ways(make, output).events == (call(0, "echo", {"text": CALL_END + END}),)


def test_block_marker_inside_plain_text_only() -> None:
    output = "No tools here, just text with ``` fences ```."
    assert parse_all_ways(make, output).events == (text(output),)
