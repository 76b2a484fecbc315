"""Raw JSON calls, for output the engine constrained to a call schema: the whole output is one
`{"name": ..., "arguments": {...}}` object or an array of them."""

from __future__ import annotations

from collections.abc import Sequence

from vresponses.parsers.base import CallFormat, Piece, ToolSpec, tool_parser
from vresponses.parsers.calls import JsonValue, StreamingToolParser, calls_from_value
from vresponses.parsers.stream import skip_space


@tool_parser
class JsonCallParser(StreamingToolParser):
    """Emits calls when the output starts (after spaces) with a call object or array of them, and text for
    everything else: other output, a value that is not calls, and anything after the value."""

    name = "json"
    call_format = CallFormat(prefix="[", begin="", end="", separator=", ", suffix="]")

    def __init__(self, tools: Sequence[ToolSpec]) -> None:
        super().__init__(tools)
        self._value = JsonValue()
        # `_at_start` holds nothing back (leading whitespace goes straight to the text sink).
        self._goto(self._at_start, self._end_rest)

    def _at_start(self, text: str, pos: int, out: list[Piece]) -> int:
        end = skip_space(text, pos)
        self._plain(text[pos:end])
        if end < len(text):
            if text[end] in "{[":
                self._goto(self._in_value, self._end_value)
            else:
                self._goto(self._in_rest, self._end_rest)
        return end

    def _in_value(self, text: str, pos: int, out: list[Piece]) -> int:
        end = self._value.push(text, pos)
        if end is None:
            return len(text)
        body, value = self._value.take()
        calls = calls_from_value(value, "name", ("arguments", "parameters"))
        if calls is not None:
            self._emit(calls, out)
        else:
            self._fail(body)
        self._goto(self._in_rest, self._end_rest)
        return end

    def _end_value(self, out: list[Piece]) -> None:
        self._fail(self._value.take_text())
