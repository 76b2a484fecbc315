"""Mistral tool calls: `[TOOL_CALLS]` then a JSON array of `{"name", "arguments"}` (tokenizer v3/v7), or
`[TOOL_CALLS]NAME[ARGS]{...}` per call (v11+, with an optional `[CALL_ID]id` before `[ARGS]`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from vresponses.parsers.base import CallFormat, Piece, ToolSpec, tool_parser
from vresponses.parsers.brackets import BracketScanner
from vresponses.parsers.calls import Call, StreamingToolParser, calls_from_json, dump_arguments, load_json
from vresponses.parsers.stream import Chunks, Literals, Seeker, run_end, skip_space

TOOL_CALLS = "[TOOL_CALLS]"
ARGS = "[ARGS]"
CALL_ID = "[CALL_ID]"
# Longer names or ids are not markup; the cap keeps what is held back bounded.
NAME_LIMIT = 256
_NAME = re.compile(r"[A-Za-z0-9_.\-]*")
_ID = re.compile(r"[A-Za-z0-9]*")
# Turns a finished JSON body into calls, or None when it is not one.
_Done = Callable[[str], list[Call] | None]


@tool_parser
class MistralToolParser(StreamingToolParser):
    """Each `[TOOL_CALLS]` starts either a JSON array (or single object) of calls, or one named call whose
    arguments object ends where its braces balance; text may follow, and further `[TOOL_CALLS]` too."""

    name = "mistral"
    call_format = CallFormat(prefix="[TOOL_CALLS][", begin="", end="", separator=", ", suffix="]")

    def __init__(self, tools: Sequence[ToolSpec]) -> None:
        super().__init__(tools)
        self._seek = Seeker(TOOL_CALLS)
        self._after_name = Literals(ARGS, CALL_ID, "{")
        self._after_id = Literals(ARGS)
        self._name = Chunks()
        self._call_name = ""
        self._id_length = 0
        self._body = Chunks()
        self._scanner = BracketScanner()
        self._goto(self._in_text, self._end_text)

    def _in_text(self, text: str, pos: int, out: list[Piece]) -> int:
        before, marker, pos = self._seek.push(text, pos)
        self._plain(before, out)
        if marker is not None:
            self._raw.append(marker)
            self._goto(self._after_tag, self._end_markup)
        return pos

    def _end_text(self, out: list[Piece]) -> None:
        self._plain(self._seek.take_held(), out)

    def _end_markup(self, out: list[Piece]) -> None:
        self._fail(out)

    def _give_up(self, out: list[Piece], unread: str = "") -> None:
        """Not a call after all: the markup so far is text, and `unread` (input a literal matcher consumed
        but did not use) is read again as ordinary output, since it may itself start `[TOOL_CALLS]`."""
        self._fail(out)
        self._goto(self._in_text, self._end_text)
        self._run(unread, out)

    def _after_tag(self, text: str, pos: int, out: list[Piece]) -> int:
        end = skip_space(text, pos)
        self._raw.append(text[pos:end])
        if end < len(text):
            if text[end] in "[{":
                self._open_json(self._finish_list)
            else:
                self._goto(self._in_name, self._end_markup)
        return end

    def _in_name(self, text: str, pos: int, out: list[Piece]) -> int:
        end = run_end(_NAME, text, pos)
        room = NAME_LIMIT - len(self._name)
        if end - pos > room:
            self._raw.append(text[pos : pos + room])
            self._name.take()
            self._give_up(out)
            return pos + room
        self._name.add(text[pos:end])
        self._raw.append(text[pos:end])
        if end < len(text):
            self._call_name = self._name.take()
            if self._call_name:
                self._goto(self._at_separator, self._end_separator)
            else:
                self._give_up(out)
        return end

    def _at_separator(self, text: str, pos: int, out: list[Piece]) -> int:
        found, end = self._after_name.push(text, pos)
        if found is None:
            return end
        if found is False:
            self._give_up(out, self._after_name.reset())
            return pos
        if found == "{":
            # Some outputs drop [ARGS]: the brace is both separator and start of the arguments.
            self._open_json(self._finish_named)
            return pos
        self._raw.append(str(found))
        if found == CALL_ID:
            self._id_length = 0
            self._goto(self._in_id, self._end_markup)
        else:
            self._goto(self._before_args, self._end_markup)
        return end

    def _end_separator(self, out: list[Piece]) -> None:
        self._fail(out, self._after_name.reset())

    def _in_id(self, text: str, pos: int, out: list[Piece]) -> int:
        end = run_end(_ID, text, pos)
        room = NAME_LIMIT - self._id_length
        if end - pos > room:
            self._raw.append(text[pos : pos + room])
            self._give_up(out)
            return pos + room
        self._id_length += end - pos
        self._raw.append(text[pos:end])
        if end < len(text):
            self._goto(self._at_args, self._end_args)
        return end

    def _at_args(self, text: str, pos: int, out: list[Piece]) -> int:
        found, end = self._after_id.push(text, pos)
        if found is None:
            return end
        if found is False:
            self._give_up(out, self._after_id.reset())
            return pos
        self._raw.append(ARGS)
        self._goto(self._before_args, self._end_markup)
        return end

    def _end_args(self, out: list[Piece]) -> None:
        self._fail(out, self._after_id.reset())

    def _before_args(self, text: str, pos: int, out: list[Piece]) -> int:
        end = skip_space(text, pos)
        self._raw.append(text[pos:end])
        if end < len(text):
            if text[end] == "{":
                self._open_json(self._finish_named)
            else:
                self._give_up(out)
        return end

    def _open_json(self, done: _Done) -> None:
        self._scanner = BracketScanner()
        self._done = done
        self._goto(self._in_json, self._end_json)

    def _in_json(self, text: str, pos: int, out: list[Piece]) -> int:
        end = self._scanner.push(text, pos)
        self._body.add(text[pos:end])
        if end is None:
            return len(text)
        body = self._body.take()
        calls = self._done(body)
        if calls is None:
            self._fail(out, body)
        else:
            self._emit(calls, out)
        self._goto(self._in_text, self._end_text)
        return end

    def _end_json(self, out: list[Piece]) -> None:
        self._fail(out, self._body.take())

    def _finish_list(self, body: str) -> list[Call] | None:
        return calls_from_json(body, "name", ("arguments",))

    def _finish_named(self, body: str) -> list[Call] | None:
        dumped = dump_arguments(load_json(body))
        return None if dumped is None else [Call(self._call_name, dumped)]
