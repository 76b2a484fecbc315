"""`<think>…</think>` reasoning (DeepSeek-R1, Qwen3): reasoning runs from an opening tag, or from the start
of output when the prompt opened it, to the first `</think>`; everything after it is content."""

from __future__ import annotations

from typing import ClassVar

from vresponses.parsers.base import Reasoning, ReasoningParser, Text, reasoning_parser
from vresponses.parsers.stream import Literals, Piece, Seeker, TrimmedText, skip_space

OPEN = "<think>"
CLOSE = "</think>"


class ThinkParser(ReasoningParser):
    """Emits reasoning from an opening `<think>` at the start (or from the start, when the prompt opened it)
    up to the first `</think>`, and content after it."""

    # Reasoning with no `</think>` by the end stays reasoning: the model was cut off while thinking.
    # Whitespace around the tags is the template's formatting and is dropped.

    # True where the chat template always ends the prompt inside `<think>` (DeepSeek-R1).
    opens_by_default: ClassVar[bool] = False

    def __init__(self, prompt_opens_reasoning: bool = False) -> None:
        super().__init__(prompt_opens_reasoning)
        self._reasoning = TrimmedText(Reasoning, strip_start=True)
        self._content = TrimmedText(Text)
        self._open = Literals(OPEN)
        self._close = Seeker(CLOSE)
        self._leading: list[str] = []
        self._state = self._at_start

    def feed(self, text: str) -> list[Text | Reasoning]:
        """Take the next delta of model output; return what is now certain."""
        out: list[Piece] = []
        pos = 0
        while pos < len(text):
            pos = self._state(text, pos, out)
        self._reasoning.drain(out)
        self._content.drain(out)
        return out

    def finish(self) -> list[Text | Reasoning]:
        """Flush whatever is held back at the end of generation."""
        out: list[Piece] = []
        if self._state == self._at_start:
            self._decide(out)
            self._run(self._open.reset(), out)
        # A partial `</think>` at the very end is reasoning text; trailing whitespace is formatting.
        self._reasoning.add(self._close.take_held())
        self._reasoning.drop_trailing()
        self._reasoning.drain(out)
        self._content.flush()
        self._content.drain(out)
        return out

    def _run(self, text: str, out: list[Piece]) -> None:
        pos = 0
        while pos < len(text):
            pos = self._state(text, pos, out)

    def _at_start(self, text: str, pos: int, out: list[Piece]) -> int:
        if not self._open.got:
            end = skip_space(text, pos)
            self._leading.append(text[pos:end])
            if end == len(text):
                return end
            pos = end
        found, end = self._open.push(text, pos)
        if found is None:
            return end
        if found:
            self._leading.clear()
            self._state = self._in_reasoning
            return end
        self._decide(out)
        self._run(self._open.reset(), out)
        return pos

    def _decide(self, out: list[Piece]) -> None:
        """No opening tag: start in reasoning or in content, replaying the leading whitespace."""
        if self.opens_by_default or self.prompt_opens_reasoning:
            self._state = self._in_reasoning
        else:
            self._state = self._in_content
        self._run("".join(self._leading), out)
        self._leading.clear()

    def _in_reasoning(self, text: str, pos: int, out: list[Piece]) -> int:
        before, marker, pos = self._close.push(text, pos)
        self._reasoning.add(before)
        if marker is not None:
            self._reasoning.drop_trailing()
            self._reasoning.drain(out)
            self._content.boundary()
            self._state = self._in_content
        return pos

    def _in_content(self, text: str, pos: int, out: list[Piece]) -> int:
        self._content.add(text[pos:])
        return len(text)


@reasoning_parser
class DeepSeekR1ReasoningParser(ThinkParser):
    """DeepSeek-R1: the template ends the prompt with `<think>\\n`, so output starts in reasoning; a `<think>`
    the model repeats at the start is skipped."""

    name = "deepseek_r1"
    opens_by_default = True


@reasoning_parser
class Qwen3ReasoningParser(ThinkParser):
    """Qwen3: the model writes `<think>` itself; without it, output is content unless the prompt opened
    reasoning (Qwen3 thinking-2507 templates end the prompt with `<think>\\n`)."""

    name = "qwen3"
