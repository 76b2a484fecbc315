"""The windowed bracket scanner and the string-aware marker search against plain character-loop references."""

from __future__ import annotations

import itertools
import random

import pytest

from vresponses.parsers.brackets import JSON, PYTHON, WINDOW, BracketScanner, MarkerOutsideStrings


def reference_end(text: str, openers: str, closers: str, quotes: str) -> int | None:
    """The obvious per-character definition of where the value starting at text[0] ends."""
    depth, quote, escape = 0, "", False
    for i, char in enumerate(text):
        if quote:
            if escape:
                escape = False
            elif char == "\\":
                escape = True
            elif char == quote:
                quote = ""
        elif char in quotes:
            quote = char
        elif char in openers:
            depth += 1
        elif char in closers:
            depth -= 1
            if depth == 0:
                return i + 1
    return None


def reference_marker(text: str, marker: str) -> int | None:
    in_string, escape = False, False
    for i, char in enumerate(text):
        if in_string:
            if escape:
                escape = False
            elif char == "\\":
                escape = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif text.startswith(marker, i):
            return i
    return None


def nested(rng: random.Random, size: int, openers: str, closers: str, quotes: str) -> str:
    """A random bracketed value of about `size` characters with strings full of brackets and escapes."""
    parts: list[str] = []
    kind = rng.randrange(len(openers))
    parts.append(openers[kind])
    budget = size
    while budget > 0:
        roll = rng.random()
        if roll < 0.25 and budget > 20:
            child = nested(rng, rng.randint(2, budget // 2), openers, closers, quotes)
            parts.append(child)
            budget -= len(child)
        elif roll < 0.5:
            quote = rng.choice(quotes)
            body = "".join(rng.choice(f"ab {openers}{closers}\\\\{quote}") for _ in range(rng.randint(0, 40)))
            body = body.replace("\\", "\\\\").replace(quote, "\\" + quote)
            parts.append(quote + body + quote)
            budget -= len(body) + 2
        else:
            token = rng.choice(["x", ":", ",", " ", "12", "\n", "é"])
            parts.append(token)
            budget -= len(token)
    parts.append(closers[kind])
    return "".join(parts)


def chunked(text: str, rng: random.Random) -> list[str]:
    cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, rng.randint(0, 30)))) if len(text) > 1 else []
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def scan(syntax: object, deltas: list[str]) -> int | None:
    scanner = BracketScanner(syntax)  # type: ignore[arg-type]
    offset = 0
    for delta in deltas:
        end = scanner.push(delta, 0)
        if end is not None:
            return offset + end
        offset += len(delta)
    return None


LANGUAGES = [(JSON, "[{", "]}", '"'), (PYTHON, "[{(", "]})", "\"'")]


@pytest.mark.parametrize(("syntax", "openers", "closers", "quotes"), LANGUAGES)
def test_scanner_matches_reference_across_windows_and_splits(
    syntax: object, openers: str, closers: str, quotes: str
) -> None:
    rng = random.Random(11)
    for trial in range(120):
        value = nested(rng, rng.choice([30, WINDOW - 5, 3 * WINDOW, 6 * WINDOW]), openers, closers, quotes)
        tail = "".join(rng.choice(f"{openers}{closers}{quotes}\\ z") for _ in range(rng.randint(0, 40)))
        text = value + tail
        if trial % 3 == 1:
            text = text[: rng.randint(1, len(text))]  # truncated: may never end
        if trial % 3 == 2:
            i = rng.randrange(1, len(text))
            text = text[:i] + rng.choice(f"{closers}{quotes}\\") + text[i:]  # one stray character
        expected = reference_end(text, openers, closers, quotes)
        assert scan(syntax, [text]) == expected
        assert scan(syntax, chunked(text, rng)) == expected
        if trial % 20 == 0:
            assert scan(syntax, list(text)) == expected


def test_marker_search_matches_reference() -> None:
    rng = random.Random(5)
    marker = "</tool_call>"
    alphabet = ['"', "\\", "<", "</tool", marker, "a", " ", "{", "}", "</tool_call"]
    for _ in range(400):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        expected = reference_marker(text, marker)
        for deltas in ([text], chunked(text, rng), list(text)):
            finder = MarkerOutsideStrings(marker)
            seen, offset, found = 0, 0, None
            for delta in deltas:
                before, hit, pos = finder.push(delta, 0)
                seen += len(before)
                if hit is not None:
                    found = seen
                    assert offset + pos == seen + len(marker), (text, deltas)
                    break
                assert pos == len(delta)
                offset += len(delta)
            assert found == expected, (text, deltas)
