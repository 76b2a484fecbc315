"""DeepSeek-V3 tool calls: a `<｜tool▁calls▁begin｜>` block of `<｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME`
+ a fenced JSON arguments object + `<｜tool▁call▁end｜>` entries, closed by `<｜tool▁calls▁end｜>`."""

from __future__ import annotations

from collections.abc import Sequence

from vresponses.parsers.base import Piece, ToolSpec, tool_parser
from vresponses.parsers.brackets import MarkerOutsideStrings
from vresponses.parsers.calls import Call, StreamingToolParser, dump_arguments, load_json
from vresponses.parsers.stream import Seeker

CALLS_BEGIN = "<｜tool▁calls▁begin｜>"
CALLS_END = "<｜tool▁calls▁end｜>"
CALL_BEGIN = "<｜tool▁call▁begin｜>"
CALL_END = "<｜tool▁call▁end｜>"
SEP = "<｜tool▁sep｜>"


def parse_entry(body: str) -> Call | None:
    """Read `TYPE<｜tool▁sep｜>NAME\\n```json\\n{...}\\n```` (V3), or `NAME<｜tool▁sep｜>{...}` (V3.1)."""
    head, sep, rest = body.partition(SEP)
    if not sep:
        return None
    rest = rest.strip()
    if rest.startswith("{"):
        # V3.1 writes the name before the separator and bare JSON after it.
        name, arguments = head.strip(), rest
    else:
        name, _, arguments = rest.partition("\n")
        name, arguments = name.strip(), arguments.strip()
        if arguments.startswith("```"):
            if not arguments.endswith("```") or len(arguments) < 6:
                return None
            arguments = arguments[3:-3]
            # The fence's info string ("json") runs to the end of its line.
            info, newline, after = arguments.partition("\n")
            if newline and not info.strip().startswith("{"):
                arguments = after
    if not name or any(c.isspace() for c in name):
        return None
    dumped = dump_arguments(load_json(arguments)) if arguments.strip() else "{}"
    return None if dumped is None else Call(name, dumped)


@tool_parser
class DeepSeekV3ToolParser(StreamingToolParser):
    """Emits each call when its `<｜tool▁call▁end｜>` (outside JSON strings) arrives, and replays as text a
    block with no good call or, after one, any malformed entry."""

    name = "deepseek_v3"
    keeps_special_tokens = True
    # The name sits outside the JSON object, so no CallFormat can describe this layout.
    call_format = None

    def __init__(self, tools: Sequence[ToolSpec]) -> None:
        super().__init__(tools)
        self._opener = Seeker(CALLS_BEGIN)
        self._next_entry = Seeker(CALL_BEGIN, CALLS_END)
        self._closer = MarkerOutsideStrings(CALL_END)
        # While no call in the block has parsed, the block marker and everything after it stay in _raw.
        self._unproven = False
        self._entry_start = 0
        self._goto(self._in_text, self._end_text)

    def _opened(self) -> None:
        self._unproven = True
        self._goto(self._in_block, self._end_block)

    def _in_block(self, text: str, pos: int, out: list[Piece]) -> int:
        before, marker, pos = self._next_entry.push(text, pos)
        # Stray text between entries is not markup; keep it.
        if self._unproven:
            self._raw.append(before)
        else:
            self._plain(before)
        if marker == CALL_BEGIN:
            self._entry_start = len(self._raw)
            self._raw.append(marker)
            self._read_body()
        elif marker == CALLS_END:
            if self._unproven:
                self._fail(marker)
            else:
                self._text.boundary()
            self._goto(self._in_text, self._end_text)
        return pos

    def _end_block(self, out: list[Piece]) -> None:
        self._fail(self._next_entry.take_held())

    def _closed(self, body: str, marker: str, out: list[Piece]) -> None:
        call = parse_entry(body)
        if call is not None:
            if self._unproven:
                # What came between the block marker and this entry (failed entries, stray text).
                self._plain("".join(self._raw[1 : self._entry_start]))
                self._unproven = False
            self._emit([call], out)
        elif self._unproven:
            self._raw.append(marker)
        else:
            self._fail(marker)
        self._goto(self._in_block, self._end_block)
