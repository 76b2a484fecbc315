"""Incremental text primitives every parser shares: a marker seeker that holds back only a possible marker
prefix, and a text sink that drops whitespace touching call markup."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol

from vresponses.parsers.base import Reasoning, Text

# A hit is (index where the marker starts, the marker).
_Hit = tuple[int, str]


class Seeker:
    """Finds the earliest of some fixed markers in a stream of deltas, reading each character a bounded
    number of times and holding back only a tail that could still begin a marker."""

    def __init__(self, *markers: str) -> None:
        if not markers or any(not m for m in markers):
            raise ValueError("Seeker needs non-empty markers")
        self._markers = markers
        self._longest = max(len(m) for m in markers)
        self._held = ""
        # One marker: str.find is fastest; several: one regex alternation finds the leftmost in one pass
        # (searching each separately could rescan a long tail once per marker found).
        self._regex: re.Pattern[str] | None = None
        if len(markers) > 1:
            ordered = sorted(markers, key=len, reverse=True)
            self._regex = re.compile("|".join(re.escape(m) for m in ordered))

    def take_held(self) -> str:
        """Return and forget the held tail (at the end of input it is plain text)."""
        held, self._held = self._held, ""
        return held

    def reset(self) -> None:
        """Start over for a new search."""
        self._held = ""

    def push(self, text: str, pos: int) -> tuple[str, str | None, int]:
        """Scan text[pos:]; return (certain text before the marker, the marker or None, position after it)."""
        prefix = ""
        if self._held:
            held, self._held = self._held, ""
            end = min(len(text), pos + self._longest - 1)
            # Any marker that starts inside `held` ends inside this window.
            window = held + text[pos:end]
            hit = self._find(window, 0)
            if hit is not None and (hit[0] < len(held) or end == len(text)):
                i, marker = hit
                return window[:i], marker, pos + i + len(marker) - len(held)
            if end == len(text):
                keep = self._partial(window, 0)
                self._held = window[len(window) - keep :]
                return window[: len(window) - keep], None, len(text)
            prefix = held
        hit = self._find(text, pos)
        if hit is not None:
            i, marker = hit
            return prefix + text[pos:i], marker, i + len(marker)
        keep = self._partial(text, pos)
        self._held = text[len(text) - keep :]
        return prefix + text[pos : len(text) - keep], None, len(text)

    def _find(self, text: str, pos: int) -> _Hit | None:
        if self._regex is None:
            marker = self._markers[0]
            i = text.find(marker, pos)
            return None if i < 0 else (i, marker)
        match = self._regex.search(text, pos)
        return None if match is None else (match.start(), match.group())

    def _partial(self, text: str, pos: int) -> int:
        """Length of the longest tail of text[pos:] that is a proper prefix of some marker."""
        low = max(pos, len(text) - self._longest + 1)
        best = 0
        for marker in self._markers:
            j = text.find(marker[0], low)
            while j >= 0:
                # The leftmost candidate is the longest, so the first that fits wins for this marker.
                if len(text) - j < len(marker) and marker.startswith(text[j:]):
                    best = max(best, len(text) - j)
                    break
                j = text.find(marker[0], j + 1)
        return best


class Finder(Protocol):
    """Finds a marker across deltas: a Seeker, or a MarkerOutsideStrings where JSON strings may quote it."""

    def push(self, text: str, pos: int) -> tuple[str, str | None, int]: ...

    def take_held(self) -> str: ...

    def reset(self) -> None: ...


class Chunks:
    """Accumulates a growing body without quadratic string concatenation."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._size = 0

    def add(self, text: str) -> None:
        if text:
            self._parts.append(text)
            self._size += len(text)

    def __len__(self) -> int:
        return self._size

    def take(self) -> str:
        """Return everything accumulated and start empty."""
        joined = "".join(self._parts)
        self._parts.clear()
        self._size = 0
        return joined


Piece = Text | Reasoning


class Sink(Protocol):
    """Where pieces go: any list that accepts text and reasoning pieces."""

    def append(self, piece: Text | Reasoning, /) -> None: ...


class TrimmedText:
    """Passes text through unchanged except whitespace touching a completed call or marked boundary."""

    # Trailing whitespace is held until it is known what follows it, and certain text is gathered and
    # drained as one piece, so a delta yields one piece per run however the parser found it.

    def __init__(self, make: Callable[[str], Piece] = Text, *, strip_start: bool = False) -> None:
        self._make = make
        self._ws: list[str] = []
        self._ready: list[str] = []
        self._strip_next = strip_start

    def add(self, text: str) -> None:
        """Take text known to be plain."""
        if self._strip_next:
            text = text.lstrip()
            if not text:
                return
            self._strip_next = False
        body = text.rstrip()
        if body:
            if self._ws:
                self._ready.extend(self._ws)
                self._ws.clear()
            self._ready.append(body)
        if len(body) < len(text):
            self._ws.append(text[len(body) :])

    def boundary(self) -> None:
        """Markup just ended (a call, a tag): drop the whitespace on both sides of it."""
        self._ws.clear()
        self._strip_next = True

    def drop_trailing(self) -> None:
        """The text ends here and its trailing whitespace is formatting."""
        self._ws.clear()

    def flush(self) -> None:
        """End of output: whitespace still held is real text."""
        self._ready.extend(self._ws)
        self._ws.clear()

    def drain(self, out: Sink) -> None:
        """Emit the certain text gathered so far as one piece."""
        if self._ready:
            out.append(self._make("".join(self._ready)))
            self._ready.clear()


class Literals:
    """Matches one of a few fixed strings at the current position, across deltas."""

    def __init__(self, *literals: str) -> None:
        self._literals = literals
        self._longest = max(len(lit) for lit in literals)
        self._got = ""

    @property
    def got(self) -> str:
        """The partial match consumed from earlier deltas."""
        return self._got

    def push(self, text: str, pos: int) -> tuple[str | bool | None, int]:
        """Return (literal, position after it) on a match, (None, end) while undecided, or (False, pos) on
        a mismatch, in which case the partial match in `got` was consumed earlier and is the caller's."""
        window = self._got + text[pos : pos + self._longest - len(self._got)]
        for literal in self._literals:
            if window.startswith(literal):
                consumed = len(literal) - len(self._got)
                self._got = ""
                return literal, pos + consumed
        if any(literal.startswith(window) for literal in self._literals):
            self._got = window
            return None, len(text)
        return False, pos

    def reset(self) -> str:
        """Forget the partial match and return it."""
        got, self._got = self._got, ""
        return got


_SPACE = re.compile(r"\s*")


def run_end(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """Where a match of pattern (one that may be empty) starting at pos ends."""
    match = pattern.match(text, pos)
    return match.end() if match else pos


def skip_space(text: str, pos: int) -> int:
    """Index of the first non-whitespace character at or after pos (len(text) if none)."""
    return run_end(_SPACE, text, pos)
