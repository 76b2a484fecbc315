"""What tool parsers share: strict JSON loading, turning a parsed object into a call, and the delta loop that
drives a parser's states (text up to an opening marker, a call body up to its closing marker), emits calls
with their indices and replays failed markup as text."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vresponses.parsers.base import Piece, ToolCallChunk, ToolParser, ToolSpec
from vresponses.parsers.brackets import BracketScanner
from vresponses.parsers.stream import Chunks, Finder, Seeker, TrimmedText


@dataclass(frozen=True, slots=True)
class Call:
    """One complete tool call: its name and its arguments as a JSON object string."""

    name: str
    arguments: str


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        # json.dumps would write Infinity, which is not JSON.
        raise ValueError(f"number out of range: {text}")
    return value


def _no_constants(text: str) -> object:
    raise ValueError(f"not JSON: {text}")


# strict=False: models put raw newlines and tabs inside strings (code arguments); accept them.
_DECODER = json.JSONDecoder(strict=False, parse_float=_finite, parse_constant=_no_constants)


class _Missing:
    """Marks a failed load, since null is a valid JSON value."""


MISSING = _Missing()


def load_json(text: str) -> object:
    """Parse text that must be exactly one JSON value (surrounding whitespace allowed), or return MISSING."""
    stripped = text.strip()
    try:
        value, end = _DECODER.raw_decode(stripped)
    except (ValueError, RecursionError):
        return MISSING
    return value if end == len(stripped) else MISSING


class JsonValue:
    """Collects one bracketed JSON value across deltas and decodes it, ending where its brackets balance."""

    # A delta that holds the whole value (the whole-output case) is decoded in one C call; otherwise the
    # value is scanned and decoded at its end. Both end at the same place, since a valid value ends
    # exactly where its brackets balance, so the split cannot change the result.

    def __init__(self) -> None:
        self._scanner = BracketScanner()
        self._body = Chunks()
        self._value: object = MISSING
        self._fresh = True

    def reset(self) -> None:
        """Start over for a value that begins at the next pushed position."""
        self._scanner.reset()
        self._body.take()
        self._value = MISSING
        self._fresh = True

    def begin(self, prefix: str) -> None:
        """The value starts with prefix, read earlier (it cannot close the value)."""
        self._fresh = False
        self._scanner.push(prefix, 0)
        self._body.add(prefix)

    def push(self, text: str, pos: int) -> int | None:
        """Read text[pos:]; return the index just past the value, or None if it goes on."""
        if self._fresh:
            self._fresh = False
            try:
                value, decoded_end = _DECODER.raw_decode(text, pos)
            except (ValueError, RecursionError):
                pass
            else:
                self._value = value
                self._body.add(text[pos:decoded_end])
                return decoded_end
        end = self._scanner.push(text, pos)
        self._body.add(text[pos:end])
        return end

    def take(self) -> tuple[str, object]:
        """The value's text and its decoded value (MISSING if it is not JSON); then start over."""
        body = self._body.take()
        value = self._value if self._value is not MISSING else load_json(body)
        self.reset()
        return body, value

    def take_text(self) -> str:
        """The text read so far (the value was cut off); then start over."""
        body = self._body.take()
        self.reset()
        return body


def dump_arguments(arguments: object) -> str | None:
    """The canonical argument string for a parsed arguments value, or None if it is not a JSON object."""
    if arguments is None:
        arguments = {}
    elif isinstance(arguments, str):
        # Some models encode the arguments object as a JSON string; accept that, nothing else.
        arguments = load_json(arguments) if arguments.strip() else {}
    if not isinstance(arguments, dict):
        return None
    return json.dumps(arguments, ensure_ascii=False)


def call_from_object(obj: object, name_key: str = "name", args_keys: Sequence[str] = ("arguments",)) -> Call | None:
    """Read a call out of a parsed `{name_key: ..., args_key: {...}}` object; None if it is not one."""
    if not isinstance(obj, dict):
        return None
    name = obj.get(name_key)
    if not isinstance(name, str) or not name.strip():
        return None
    arguments: object = None
    for key in args_keys:
        if key in obj:
            arguments = obj[key]
            break
    dumped = dump_arguments(arguments)
    return None if dumped is None else Call(name.strip(), dumped)


_CALL_START = re.compile(r"\s*(?:\[\s*)?\{")


def calls_from_json(text: str, name_key: str, args_keys: Sequence[str]) -> list[Call] | None:
    """Calls from one JSON object or a non-empty array of them; None unless every element is a call."""
    if _CALL_START.match(text) is None:
        # Cheap early answer for the common junk case; decoding would fail anyway.
        return None
    return calls_from_value(load_json(text), name_key, args_keys)


def calls_from_value(value: object, name_key: str, args_keys: Sequence[str]) -> list[Call] | None:
    """Calls from a decoded object or non-empty array of them; None unless every element is a call."""
    items = value if isinstance(value, list) else [value]
    calls = [call_from_object(item, name_key, args_keys) for item in items]
    if not calls or any(call is None for call in calls):
        return None
    return [call for call in calls if call is not None]


# A state takes (delta, position, output) and returns the position it consumed up to. A state that
# returns without consuming everything must have switched to another state.
Step = Callable[[str, int, list[Piece]], int]
End = Callable[[list[Piece]], None]


class StreamingToolParser(ToolParser):
    """Base for the state-machine tool parsers: one code path for streaming and whole-text parsing."""

    # Shared states: `_in_text` reads text up to `_opener`'s marker, then `_opened` picks the next state;
    # `_in_body` reads a call body up to `_closer`'s marker, then `_closed` decides what it was. By
    # default a body is parsed by `_parse_body` and text follows it, so a `BEGIN body END` format only
    # states its markers and how a body parses.

    def __init__(self, tools: Sequence[ToolSpec]) -> None:
        super().__init__(tools)
        self._text = TrimmedText()
        # Markup read since the current call began, replayed as text if the call turns out malformed.
        self._raw: list[str] = []
        self._body = Chunks()
        self._index = 0
        self._step: Step
        self._end: End
        self._opener: Seeker
        self._closer: Finder

    def _goto(self, step: Step, end: End) -> None:
        self._step = step
        self._end = end

    def feed(self, text: str) -> list[Piece]:
        """Take the next delta of model output; return what is now certain (text held back may be markup)."""
        out: list[Piece] = []
        self._run(text, out)
        self._text.drain(out)
        return out

    def _run(self, text: str, out: list[Piece]) -> None:
        pos = 0
        while pos < len(text):
            pos = self._step(text, pos, out)

    def finish(self) -> list[Piece]:
        """Flush whatever is held back at the end of generation; unfinished markup becomes text."""
        out: list[Piece] = []
        self._end(out)
        self._text.flush()
        self._text.drain(out)
        return out

    def _emit(self, calls: Sequence[Call], out: list[Piece]) -> None:
        self._text.drain(out)
        for call in calls:
            out.append(ToolCallChunk(self._index, call.name, call.arguments))
            self._index += 1
        self._raw.clear()
        self._text.boundary()

    def _fail(self, tail: str = "") -> None:
        """The markup read so far (and tail) was not a call: it is text after all."""
        self._raw.append(tail)
        self._text.add("".join(self._raw))
        self._raw.clear()

    def _plain(self, text: str) -> None:
        self._text.add(text)

    def _in_text(self, text: str, pos: int, out: list[Piece]) -> int:
        before, marker, pos = self._opener.push(text, pos)
        self._plain(before)
        if marker is not None:
            self._raw.append(marker)
            self._opened()
        return pos

    def _end_text(self, out: list[Piece]) -> None:
        self._plain(self._opener.take_held())

    def _opened(self) -> None:
        """The opening marker was just read (it is in `_raw`): go to the state for what follows it."""
        self._read_body()

    def _read_body(self) -> None:
        """Go on to read a call body up to the closing marker."""
        self._closer.reset()
        self._goto(self._in_body, self._end_body)

    def _in_body(self, text: str, pos: int, out: list[Piece]) -> int:
        before, marker, pos = self._closer.push(text, pos)
        self._body.add(before)
        if marker is not None:
            body = self._body.take()
            self._raw.append(body)
            self._closed(body, marker, out)
        return pos

    def _end_body(self, out: list[Piece]) -> None:
        self._raw.append(self._body.take())
        self._fail(self._closer.take_held())

    def _closed(self, body: str, marker: str, out: list[Piece]) -> None:
        """The body and its closing marker were read (the body is in `_raw`): emit its calls, or replay the
        markup as text; then read text again."""
        calls = self._parse_body(body)
        if calls is not None:
            self._emit(calls, out)
        else:
            self._fail(marker)
        self._goto(self._in_text, self._end_text)

    def _parse_body(self, body: str) -> Sequence[Call] | None:
        """The calls a complete body holds, or None if it is not a call."""
        raise NotImplementedError

    def _in_rest(self, text: str, pos: int, out: list[Piece]) -> int:
        """The rest of the output is text (for formats whose calls may only come first)."""
        self._plain(text[pos:])
        return len(text)

    def _end_rest(self, out: list[Piece]) -> None:
        pass

    def _end_markup(self, out: list[Piece]) -> None:
        """Output ended inside markup whose state holds nothing back: the markup is text."""
        self._fail()
