"""Hermes-style tool calls (Qwen2.5, Qwen3, Hermes 2/3): `<tool_call>{json}</tool_call>` blocks between text."""

from __future__ import annotations

from collections.abc import Sequence

from vresponses.parsers.base import CallFormat, Piece, ToolSpec, tool_parser
from vresponses.parsers.brackets import MarkerOutsideStrings
from vresponses.parsers.calls import StreamingToolParser, calls_from_json
from vresponses.parsers.stream import Chunks, Seeker

BEGIN = "<tool_call>"
END = "</tool_call>"


@tool_parser
class HermesToolParser(StreamingToolParser):
    """Emits a call for each `<tool_call>` block holding a `{"name", "arguments"}` object, ended by the first
    `</tool_call>` outside a JSON string, and text for everything else."""

    # Ending outside strings lets arguments quote the tags (the CallFormat round trip needs that); the
    # price is that a call with an unbalanced quote runs to the end of output and comes back as text.

    name = "hermes"
    call_format = CallFormat(prefix="", begin="<tool_call>\n", end="\n</tool_call>", separator="\n", suffix="")

    def __init__(self, tools: Sequence[ToolSpec]) -> None:
        super().__init__(tools)
        self._begin = Seeker(BEGIN)
        self._close = MarkerOutsideStrings(END)
        self._body = Chunks()
        self._goto(self._in_text, self._end_text)

    def _in_text(self, text: str, pos: int, out: list[Piece]) -> int:
        before, marker, pos = self._begin.push(text, pos)
        self._plain(before)
        if marker is not None:
            self._raw.append(marker)
            self._close.reset()
            self._goto(self._in_call, self._end_call)
        return pos

    def _end_text(self, out: list[Piece]) -> None:
        self._plain(self._begin.take_held())

    def _in_call(self, text: str, pos: int, out: list[Piece]) -> int:
        before, marker, pos = self._close.push(text, pos)
        self._body.add(before)
        if marker is not None:
            body = self._body.take()
            self._raw.append(body)
            # Qwen sometimes writes "parameters" where Hermes writes "arguments".
            calls = calls_from_json(body, "name", ("arguments", "parameters"))
            if calls is not None:
                self._emit(calls, out)
            else:
                self._fail(marker)
            self._goto(self._in_text, self._end_text)
        return pos

    def _end_call(self, out: list[Piece]) -> None:
        self._raw.append(self._body.take())
        self._fail(self._close.take_held())
