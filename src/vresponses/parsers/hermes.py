"""Hermes-style tool calls (Qwen2.5, Qwen3, Hermes 2/3): `<tool_call>{json}</tool_call>` blocks between text."""

from __future__ import annotations

from collections.abc import Sequence

from vresponses.parsers.base import CallFormat, ToolSpec, tool_parser
from vresponses.parsers.brackets import MarkerOutsideStrings
from vresponses.parsers.calls import Call, StreamingToolParser, calls_from_json
from vresponses.parsers.stream import Seeker

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
        self._opener = Seeker(BEGIN)
        self._closer = MarkerOutsideStrings(END)
        self._goto(self._in_text, self._end_text)

    def _parse_body(self, body: str) -> list[Call] | None:
        # Qwen sometimes writes "parameters" where Hermes writes "arguments".
        return calls_from_json(body, "name", ("arguments", "parameters"))
