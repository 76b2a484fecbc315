"""Llama 3.1/3.2 JSON tool calls: `{"name": ..., "parameters": {...}}` objects, optionally after
`<|python_tag|>`, several joined by `; `."""

from __future__ import annotations

from collections.abc import Sequence

from vresponses.parsers.base import CallFormat, Piece, ToolSpec, tool_parser
from vresponses.parsers.calls import JsonValue, StreamingToolParser, call_from_object
from vresponses.parsers.stream import Literals, Seeker, skip_space

PYTHON_TAG = "<|python_tag|>"


@tool_parser
class Llama3JsonToolParser(StreamingToolParser):
    """Emits calls for `{"name", "parameters"}` objects at the start of output or right after
    `<|python_tag|>`, and text for everything else, including JSON that is not a call."""

    name = "llama3_json"
    keeps_special_tokens = True
    call_format = CallFormat(
        prefix="", begin="", end="", separator="; ", suffix="", name_key="name", args_key="parameters"
    )

    def __init__(self, tools: Sequence[ToolSpec]) -> None:
        super().__init__(tools)
        self._tag = Literals(PYTHON_TAG)
        self._opener = Seeker(PYTHON_TAG)
        self._value = JsonValue()
        self._semicolon = False
        self._goto(self._at_start, self._end_start)

    def _at_start(self, text: str, pos: int, out: list[Piece]) -> int:
        if not self._tag.got:
            # Leading whitespace is held by the text sink and dropped if a call follows.
            end = skip_space(text, pos)
            self._plain(text[pos:end])
            if end == len(text):
                return end
            if text[end] == "{":
                self._open_object()
                return end
            pos = end
        found, pos = self._tag.push(text, pos)
        if found is None:
            return pos
        if found:
            self._raw.append(PYTHON_TAG)
            self._opened()
            return pos
        self._goto(self._in_text, self._end_text)
        self._run(self._tag.reset(), out)
        return pos

    def _end_start(self, out: list[Piece]) -> None:
        self._plain(self._tag.reset())

    def _opened(self) -> None:
        self._goto(self._before_object, self._end_markup)

    def _before_object(self, text: str, pos: int, out: list[Piece]) -> int:
        """Whitespace, then `{` opens a call; anything else means the markup was text."""
        end = skip_space(text, pos)
        self._raw.append(text[pos:end])
        if end == len(text):
            return end
        if text[end] == "{":
            self._open_object()
            return end
        # After `<|python_tag|>` this is code (Llama's built-in tools): not a JSON call, so text.
        self._fail()
        self._goto(self._in_text, self._end_text)
        return end

    def _open_object(self) -> None:
        self._value.reset()
        self._goto(self._in_object, self._end_object)

    def _in_object(self, text: str, pos: int, out: list[Piece]) -> int:
        end = self._value.push(text, pos)
        if end is None:
            return len(text)
        body, value = self._value.take()
        call = call_from_object(value, "name", ("parameters", "arguments"))
        if call is None:
            self._fail(body)
            self._goto(self._in_text, self._end_text)
        else:
            self._emit([call], out)
            self._semicolon = False
            self._goto(self._between, self._end_markup)
        return end

    def _end_object(self, out: list[Piece]) -> None:
        self._fail(self._value.take_text())

    def _between(self, text: str, pos: int, out: list[Piece]) -> int:
        """After a call: whitespace, at most one `;`, whitespace, then `{` opens the next call."""
        end = skip_space(text, pos)
        self._raw.append(text[pos:end])
        if end < len(text) and text[end] == ";" and not self._semicolon:
            self._semicolon = True
            self._raw.append(";")
            return end + 1
        return self._before_object(text, end, out)
