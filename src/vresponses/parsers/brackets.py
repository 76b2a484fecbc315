"""Finds where a bracketed JSON value (or Python literal) ends in a stream of deltas, in time linear in the
input: strings and runs of plain characters are skipped by one regex call each, never rescanned."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class _Syntax:
    """The token classes one bracket language needs: what to skip, what opens, what closes, string bodies."""

    skip: re.Pattern[str]
    opens: re.Pattern[str]
    closes: re.Pattern[str]
    openers: str
    closers: str
    strings: dict[str, re.Pattern[str]]


def _string_body(quote: str) -> re.Pattern[str]:
    q = re.escape(quote)
    # Possessive, so an unterminated string costs one pass and no backtracking.
    return re.compile(rf"[^{q}\\]*+(?:\\[\s\S][^{q}\\]*+)*+")


def _complete_string(quote: str) -> str:
    q = re.escape(quote)
    return rf"{q}[^{q}\\]*+(?:\\[\s\S][^{q}\\]*+)*+{q}"


JSON = _Syntax(
    skip=re.compile(rf'(?:[^"{{}}\[\]]++|{_complete_string(chr(34))})*+'),
    opens=re.compile(r"[\[{]+"),
    closes=re.compile(r"[\]}]+"),
    openers="[{",
    closers="]}",
    strings={'"': _string_body('"')},
)

# Python literals for pythonic calls: both quote kinds and parentheses. Triple-quoted strings scan as
# adjacent ordinary strings, which only matters for brackets inside them; ast has the final word anyway.
PYTHON = _Syntax(
    skip=re.compile(rf"""(?:[^"'()\[\]{{}}]++|{_complete_string('"')}|{_complete_string("'")})*+"""),
    opens=re.compile(r"[\[{(]+"),
    closes=re.compile(r"[\]})]+"),
    openers="[{(",
    closers="]})",
    strings={'"': _string_body('"'), "'": _string_body("'")},
)


class BracketScanner:
    """Tracks string state and bracket depth of a value that starts with an opening bracket; push deltas
    until it reports the index just past the matching close. Bracket kinds are not matched against each
    other: a mismatched value still ends somewhere and then fails to parse."""

    def __init__(self, syntax: _Syntax = JSON) -> None:
        self._syntax = syntax
        self._depth = 0
        self._quote = ""
        self._escape = False

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
                match = syntax.strings[self._quote].match(text, pos)
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
            match = syntax.skip.match(text, pos)
            pos = match.end() if match else pos
            if pos == n:
                return None
            char = text[pos]
            if char in syntax.openers:
                run = syntax.opens.match(text, pos)
                end = run.end() if run else pos + 1
                self._depth += end - pos
                pos = end
            elif char in syntax.closers:
                run = syntax.closes.match(text, pos)
                end = run.end() if run else pos + 1
                if end - pos >= self._depth:
                    done = pos + self._depth
                    self._depth = 0
                    return done
                self._depth -= end - pos
                pos = end
            else:
                # An opening quote whose string does not close within this delta.
                self._quote = char
                pos += 1
        return None


def _marker_guard(marker: str) -> str:
    """Regex for marker[0] where it begins neither the marker nor a prefix of it that runs to the end."""
    rest = marker[1:]
    partial = ""
    for char in reversed(rest):
        partial = f"(?:{re.escape(char)}{partial})?"
    return f"{re.escape(marker[0])}(?!{re.escape(rest)}|{partial}\\Z)"


class MarkerOutsideStrings:
    """Finds the first occurrence of an end marker that is not inside a JSON string, across deltas, so an
    argument that quotes the marker does not end the call. Everything but the marker's first character,
    strings included, is skipped by one regex call per delta."""

    def __init__(self, marker: str) -> None:
        quote = _complete_string('"')
        self._marker = marker
        first = re.escape(marker[0])
        self._skip = re.compile(rf'(?:[^"{first}]++|{quote}|{_marker_guard(marker)})*+')
        self._string = _string_body('"')
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
                match = self._string.match(text, pos)
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
