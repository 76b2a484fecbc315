"""Finds where a bracketed JSON value (or Python literal) ends, and where an end marker occurs outside JSON
strings, in a stream of deltas and in time linear in the input: the work per character is done by regex,
str and itertools calls in C, and Python-level steps are counted per window of text, never per bracket."""

from __future__ import annotations

import functools
import operator
import re
from dataclasses import dataclass
from itertools import accumulate, repeat

# Text is judged in windows that start small (a short value costs about its own length) and double while
# the value goes on (a long one costs few Python-level steps), up to a size that keeps the one
# fine-grained pass over the window where the value ends cheap.
FIRST_WINDOW = 64
WINDOW = 2048


def _string_body(quote: str) -> re.Pattern[str]:
    q = re.escape(quote)
    # Possessive, so an unterminated string costs one pass and no backtracking.
    return re.compile(rf"[^{q}\\]*+(?:\\[\s\S][^{q}\\]*+)*+")


def _complete_string(quote: str) -> str:
    q = re.escape(quote)
    return rf"{q}[^{q}\\]*+(?:\\[\s\S][^{q}\\]*+)*+{q}"


@dataclass(frozen=True, slots=True)
class _Syntax:
    """One bracket language, as the regexes and tables the scanner needs."""

    quotes: str
    # Plain text and complete strings (brackets included): what a window may hold.
    window: re.Pattern[str]
    strings: re.Pattern[str]
    # Everything but brackets, to delete; then openers become "\x02" and closers "\x00" (a step of +1
    # or -1 once 1 is subtracted).
    not_brackets: re.Pattern[str]
    steps: dict[int, str]
    # Groups: 1 a run of closers, 2 a run of openers, then plain text and complete strings.
    segment: re.Pattern[str]
    string_body: dict[str, re.Pattern[str]]
    whole_string: dict[str, re.Pattern[str]]


def _syntax(openers: str, closers: str, quotes: str) -> _Syntax:
    opens, closes = re.escape(openers), re.escape(closers)
    strings = "|".join(_complete_string(q) for q in quotes)
    steps = {ord(c): "\x02" for c in openers}
    steps.update({ord(c): "\x00" for c in closers})
    return _Syntax(
        quotes=quotes,
        window=re.compile(f"(?:[^{re.escape(quotes)}]++|{strings})*+"),
        strings=re.compile(strings),
        not_brackets=re.compile(f"[^{opens}{closes}]++"),
        steps=steps,
        segment=re.compile(f"([{closes}]*+)([{opens}]*+)((?:[^{re.escape(quotes)}{opens}{closes}]++|{strings})*+)"),
        string_body={q: _string_body(q) for q in quotes},
        whole_string={q: re.compile(_complete_string(q)) for q in quotes},
    )


JSON = _syntax("[{", "]}", '"')
# Python literals for pythonic calls: both quote kinds and parentheses. Triple-quoted strings scan as
# adjacent ordinary strings, which only matters for brackets inside them; ast has the final word anyway.
PYTHON = _syntax("[{(", "]})", "\"'")

_ONES = repeat(1)


class BracketScanner:
    """Reports where a value that starts with an opening bracket ends, pushed one delta at a time."""

    # Bracket kinds are not matched against each other: a mismatched value still ends somewhere and then
    # fails to parse, which is all the callers need.

    def __init__(self, syntax: _Syntax = JSON) -> None:
        self._syntax = syntax
        self.reset()

    def reset(self) -> None:
        """Start over for a new value."""
        self._depth = 0
        self._quote = ""
        self._escape = False
        self._window = FIRST_WINDOW

    def push(self, text: str, pos: int) -> int | None:
        """Scan text[pos:]; return the index just past the end of the value, or None if it goes on."""
        syntax = self._syntax
        n = len(text)
        if self._escape:
            if pos >= n:
                return None
            pos += 1
            self._escape = False
        while pos < n:
            if self._quote:
                match = syntax.string_body[self._quote].match(text, pos)
                pos = match.end() if match else pos
                if pos == n:
                    return None
                if text[pos] == "\\":
                    # A lone backslash can only stop the body regex at the very end of the delta.
                    self._escape = True
                    return None
                self._quote = ""
                pos += 1
                continue
            window = syntax.window.match(text, pos, min(n, pos + self._window))
            stop = window.end() if window else pos
            if stop == pos:
                # A quote: a complete string longer than a window, or one still open when the delta ends.
                whole = syntax.whole_string[text[pos]].match(text, pos)
                if whole is not None:
                    pos = whole.end()
                else:
                    self._quote = text[pos]
                    pos += 1
                continue
            span = text[pos:stop]
            if any(q in span for q in syntax.quotes):
                span = syntax.strings.sub("", span)
            steps = syntax.not_brackets.sub("", span).translate(syntax.steps).encode("latin-1")
            if steps:
                heights = list(accumulate(map(operator.sub, steps, _ONES)))
                if self._depth + min(heights) <= 0:
                    return self._fine(text, pos, stop)
                self._depth += heights[-1]
            pos = stop
            self._window = min(2 * self._window, WINDOW)
        return None

    def _fine(self, text: str, pos: int, stop: int) -> int:
        """The value ends inside text[pos:stop]: find where, one segment of brackets at a time."""
        segment_re = self._syntax.segment
        while True:
            segment = segment_re.match(text, pos, stop)
            if segment is None or segment.end() == pos:
                raise AssertionError("the window said the value ends here")  # pragma: no cover
            closed = segment.end(1) - pos
            if closed and closed >= self._depth:
                done = pos + self._depth
                self._depth = 0
                return done
            self._depth += (segment.end(2) - segment.start(2)) - closed
            pos = segment.end()


@functools.cache
def _skip_pattern(marker: str) -> re.Pattern[str]:
    """Plain text and complete strings, and the marker's first character wherever it begins neither the
    marker nor a prefix of it that runs to the end of the delta."""
    rest = marker[1:]
    partial = ""
    for char in reversed(rest):
        partial = f"(?:{re.escape(char)}{partial})?"
    first = re.escape(marker[0])
    guard = f"{first}(?!{re.escape(rest)}|{partial}\\Z)"
    return re.compile(rf'(?:[^"{first}]++|{_complete_string(chr(34))}|{guard})*+')


_STRING_BODY = _string_body('"')


class MarkerOutsideStrings:
    """Finds the first end marker outside JSON strings across deltas, so an argument that quotes it does
    not end the call."""

    def __init__(self, marker: str) -> None:
        self._marker = marker
        self._skip = _skip_pattern(marker)
        self.reset()

    def reset(self) -> None:
        """Start over for a new call body."""
        self._held = ""
        self._in_string = False
        self._escape = False

    def push(self, text: str, pos: int) -> tuple[str, str | None, int]:
        """Scan text[pos:]; return (text before the marker, the marker or None, position after it)."""
        shift = 0  # added to an index in `text` to give the index in the caller's delta
        if self._held:
            # Rare (a delta ended inside a possible marker): one copy of this delta is still linear.
            shift = pos - len(self._held)
            text, pos = self._held + text[pos:], 0
            self._held = ""
        start = pos
        n = len(text)
        while pos < n:
            if self._escape:
                pos += 1
                self._escape = False
                continue
            if self._in_string:
                match = _STRING_BODY.match(text, pos)
                pos = match.end() if match else pos
                if pos == n:
                    break
                if text[pos] == "\\":
                    self._escape = True
                    pos += 1
                    continue
                self._in_string = False
                pos += 1
                continue
            match = self._skip.match(text, pos)
            pos = match.end() if match else pos
            if pos == n:
                break
            if text[pos] == '"':
                self._in_string = True
                pos += 1
            elif text.startswith(self._marker, pos):
                after = pos + len(self._marker)
                return text[start:pos], self._marker, after + shift
            else:
                # A proper prefix of the marker runs to the end of this delta: hold it.
                self._held = text[pos:]
                return text[start:pos], None, n + shift
        return text[start:], None, n + shift

    def take_held(self) -> str:
        """Return and forget a held partial marker (at the end of input it is plain text)."""
        held, self._held = self._held, ""
        return held
