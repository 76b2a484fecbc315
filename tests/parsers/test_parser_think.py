"""deepseek_r1 and qwen3: `<think>` reasoning split from content."""

from __future__ import annotations

from splitcheck import call, parse_all_ways, reasoning, text

from vresponses.parsers.base import Reasoning, Text
from vresponses.parsers.hermes import HermesToolParser
from vresponses.parsers.think import DeepSeekR1ReasoningParser, Qwen3ReasoningParser

# DeepSeek-R1's template ends the prompt with "<think>\n", so the output opens inside reasoning.
R1_OUTPUT = "Okay, the user asks for 2 + 2. That's 4.\n</think>\n\nThe answer is **4**."
# Qwen3 (thinking mode) writes the tags itself.
QWEN3_OUTPUT = "<think>\nOkay, the user greeted me. I should greet back.\n</think>\n\nHello! How can I help you today?"


def test_deepseek_r1_prompt_opened_reasoning() -> None:
    got = parse_all_ways(DeepSeekR1ReasoningParser, R1_OUTPUT)
    assert got.events == (reasoning("Okay, the user asks for 2 + 2. That's 4."), text("The answer is **4**."))


def test_deepseek_r1_skips_a_repeated_open_tag() -> None:
    got = parse_all_ways(DeepSeekR1ReasoningParser, "<think>\n" + R1_OUTPUT)
    assert got.events == (reasoning("Okay, the user asks for 2 + 2. That's 4."), text("The answer is **4**."))


def test_deepseek_r1_cut_off_while_thinking_is_all_reasoning() -> None:
    got = parse_all_ways(DeepSeekR1ReasoningParser, "Let me think about </thi")
    assert got.events == (reasoning("Let me think about </thi"),)


def test_qwen3_think_tags() -> None:
    got = parse_all_ways(Qwen3ReasoningParser, QWEN3_OUTPUT)
    assert got.events == (
        reasoning("Okay, the user greeted me. I should greet back."),
        text("Hello! How can I help you today?"),
    )


def test_qwen3_without_tags_is_content() -> None:
    output = "  Hello! No thinking here, even with </think> in the text.\n"
    assert parse_all_ways(Qwen3ReasoningParser, output).events == (text(output),)


def test_qwen3_prompt_opened_reasoning() -> None:
    def make() -> Qwen3ReasoningParser:
        return Qwen3ReasoningParser(prompt_opens_reasoning=True)

    output = "The user wants a haiku.\n</think>\n\nAutumn moonlight..."
    assert parse_all_ways(make, output).events == (reasoning("The user wants a haiku."), text("Autumn moonlight..."))


def test_empty_reasoning_and_text_inside_reasoning_that_looks_like_tags() -> None:
    got = parse_all_ways(Qwen3ReasoningParser, "<think>\n\n</think>\n\nHi")
    assert got.events == (text("Hi"),)
    got = parse_all_ways(Qwen3ReasoningParser, "<think>a <b> </thin c</think>d")
    assert got.events == (reasoning("a <b> </thin c"), text("d"))


def test_content_after_reasoning_keeps_later_think_tags() -> None:
    got = parse_all_ways(Qwen3ReasoningParser, "<think>r</think>c <think>x</think>")
    assert got.events == (reasoning("r"), text("c <think>x</think>"))


def test_streaming_reasoning_is_emitted_before_the_close_tag() -> None:
    parser = Qwen3ReasoningParser()
    assert parser.feed("<thi") == []
    assert parser.feed("nk>\nStep one") == [Reasoning("Step one")]
    assert parser.feed(". </th") == [Reasoning(".")]
    assert parser.feed("ink>\n\nDone") == [Text("Done")]
    assert parser.finish() == []


class _Chain:
    """Reasoning then tool parsing, as the pipeline runs them."""

    def __init__(self) -> None:
        self.think = Qwen3ReasoningParser()
        self.tools = HermesToolParser([])

    def _route(self, pieces: list[Text | Reasoning]) -> list[object]:
        out: list[object] = []
        for piece in pieces:
            out.extend(self.tools.feed(piece.text) if isinstance(piece, Text) else [piece])
        return out

    def feed(self, delta: str) -> list[object]:
        return self._route(self.think.feed(delta))

    def finish(self) -> list[object]:
        return self._route(self.think.finish()) + list(self.tools.finish())


def test_reasoning_then_tool_call_through_both_parsers() -> None:
    output = (
        "<think>\nThe user wants the weather; call the tool.\n</think>\n\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    )
    got = parse_all_ways(_Chain, output)  # type: ignore[arg-type]
    assert got.events == (
        reasoning("The user wants the weather; call the tool."),
        call(0, "get_weather", {"city": "Paris"}),
    )
