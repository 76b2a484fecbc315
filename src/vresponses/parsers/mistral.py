"""Mistral tool calls: `[TOOL_CALLS]` then a JSON array of `{"name", "arguments"}` (tokenizer v3/v7), or
`[TOOL_CALLS]NAME[ARGS]{...}` per call (v11+, with an optional `[CALL_ID]id` before `[ARGS]`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from vresponses.parsers.base import CallFormat, Piece, ToolSpec, tool_parser
from vresponses.parsers.calls import Call, JsonValue, StreamingToolParser, calls_from_value, dump_arguments
from vresponses.parsers.stream import Chunks, Literals, Seeker, run_end, skip_space

TOOL_CALLS = "[TOOL_CALLS]"
ARGS = "[ARGS]"
CALL_ID = "[CALL_ID]"
# Longer names or ids are not markup; the cap keeps what is held back bounded.
NAME_LIMIT = 256
_NAME = re.compile(r"[A-Za-z0-9_.\-]*")
_ID = re.compile(r"[A-Za-z0-9]*")
# What the name states accept in one go: name, optional call id, [ARGS] and spaces, up to the brace.
_WHOLE_HEAD = re.compile(r"([A-Za-z0-9_.\-]{1,256})((?:\[CALL_ID\][A-Za-z0-9]{0,256})?\[ARGS\]\s*)?(?=\{)")
# Turns a decoded JSON value into calls, or None when it is not one.
_Done = Callable[[object], list[Call] | None]


@tool_parser
class MistralToolParser(StreamingToolParser):
    """Each `[TOOL_CALLS]` starts either a JSON array (or single object) of calls, or one named call whose
    arguments object ends where its braces balance; text may follow, and further `[TOOL_CALLS]` too."""

    name = "mistral"
    keeps_special_tokens = True
    call_format = CallFormat(prefix="[TOOL_CALLS][", begin="", end="", separator=", ", suffix="]")

    def __init__(self, tools: Sequence[ToolSpec]) -> None:
        super().__init__(tools)
        self._opener = Seeker(TOOL_CALLS)
        self._after_name = Literals(ARGS, CALL_ID, "{")
        self._after_id = Literals(ARGS)
        self._name = Chunks()
        self._call_name = ""
        self._id_length = 0
        self._value = JsonValue()
        self._done: _Done = self._finish_list
        self._goto(self._in_text, self._end_text)

    def _opened(self) -> None:
        self._goto(self._after_tag, self._end_markup)

    def _give_up(self, out: list[Piece], unread: str = "") -> None:
        """Not a call after all: the markup so far is text, and `unread` (input a literal matcher consumed
        but did not use) is read again as ordinary output, since it may itself start `[TOOL_CALLS]`."""
        self._fail()
        self._goto(self._in_text, self._end_text)
        self._run(unread, out)

    def _after_tag(self, text: str, pos: int, out: list[Piece]) -> int:
        end = skip_space(text, pos)
        self._raw.append(text[pos:end])
        if end < len(text):
            if text[end] == "[":
                after = skip_space(text, end + 1)
                if after < len(text) and text[after] != "{":
                    # Decided within this delta (the common case): not a call list, and the `[` is text.
                    self._give_up(out)
                    return end
                self._value.reset()
                self._value.begin("[")
                self._goto(self._after_bracket, self._end_json)
                return self._after_bracket(text, end + 1, out)
            if text[end] == "{":
                self._open_json(self._finish_list)
                return end
            head = _WHOLE_HEAD.match(text, end)
            if head is not None:
                # The delta holds name, separators and the opening brace: the states below, in one step.
                self._raw.append(head.group())
                self._call_name = head.group(1)
                self._open_json(self._finish_named)
                return head.end()
            self._goto(self._in_name, self._end_markup)
        return end

    def _after_bracket(self, text: str, pos: int, out: list[Piece]) -> int:
        """`[TOOL_CALLS][` must go on with an object; deciding here keeps a stray `[` from swallowing text."""
        end = skip_space(text, pos)
        self._value.push(text[pos:end], 0)
        if end < len(text):
            if text[end] == "{":
                self._done = self._finish_list
                self._goto(self._in_json, self._end_json)
            else:
                # The `[` was not markup: read it again as text, where it may begin another `[TOOL_CALLS]`.
                self._give_up(out, self._value.take_text())
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
        self._fail(self._after_name.reset())

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
        self._fail(self._after_id.reset())

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
        self._value.reset()
        self._done = done
        self._goto(self._in_json, self._end_json)

    def _in_json(self, text: str, pos: int, out: list[Piece]) -> int:
        end = self._value.push(text, pos)
        if end is None:
            return len(text)
        body, value = self._value.take()
        calls = self._done(value)
        if calls is None:
            self._fail(body)
        else:
            self._emit(calls, out)
        self._goto(self._in_text, self._end_text)
        return end

    def _end_json(self, out: list[Piece]) -> None:
        self._fail(self._value.take_text())

    def _finish_list(self, value: object) -> list[Call] | None:
        return calls_from_value(value, "name", ("arguments",))

    def _finish_named(self, value: object) -> list[Call] | None:
        dumped = dump_arguments(value)
        return None if dumped is None else [Call(self._call_name, dumped)]
