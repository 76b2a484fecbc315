"""Property-style helpers: feed the same output through a parser under many splits and demand one result."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from vresponses.parsers.base import Reasoning, ReasoningParser, Text, ToolCallChunk, ToolParser

AnyParser = ToolParser | ReasoningParser
Event = tuple[str, str] | tuple[str, int, str, str]


@dataclass(frozen=True)
class Parsed:
    """What a parser made of one output: the ordered runs of text, reasoning and calls."""

    events: tuple[Event, ...]

    @property
    def text(self) -> str:
        return "".join(e[1] for e in self.events if e[0] == "text")  # type: ignore[misc]

    @property
    def reasoning(self) -> str:
        return "".join(e[1] for e in self.events if e[0] == "reasoning")  # type: ignore[misc]

    @property
    def calls(self) -> list[tuple[str, dict[str, object]]]:
        return [(e[2], json.loads(e[3])) for e in self.events if e[0] == "call"]  # type: ignore[misc]


def splits(text: str, seed: int = 0) -> Iterator[list[str]]:
    """The splits every check covers: whole, one char at a time, fixed 7-char and 2-char, and random chunks."""
    yield [text]
    yield list(text)
    for size in (2, 7):
        yield [text[i : i + size] for i in range(0, len(text), size)]
    rng = random.Random(seed)
    for _ in range(6):
        cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, rng.randint(1, 12)))) if text else []
        bounds = [0, *cuts, len(text)]
        yield [text[a:b] for a, b in itertools.pairwise(bounds)]


def collect(parser: AnyParser, deltas: Sequence[str]) -> Parsed:
    """Run one split through a fresh parser and normalise its pieces into ordered events."""
    pieces: list[object] = []
    for delta in deltas:
        pieces.extend(parser.feed(delta))
    pieces.extend(parser.finish())
    events: list[Event] = []
    names: dict[int, str] = {}
    args: dict[int, list[str]] = {}
    for piece in pieces:
        if isinstance(piece, Text | Reasoning):
            assert piece.text, f"empty piece {piece!r}"
            kind = "text" if isinstance(piece, Text) else "reasoning"
            if events and events[-1][0] == kind:
                events[-1] = (kind, events[-1][1] + piece.text)
            else:
                events.append((kind, piece.text))
        elif isinstance(piece, ToolCallChunk):
            if piece.index not in names:
                assert piece.name, f"first chunk of call {piece.index} has no name"
                assert piece.index == len(names), f"call index {piece.index} out of order"
                names[piece.index] = piece.name
                args[piece.index] = []
                events.append(("call", piece.index, piece.name, ""))
            else:
                assert piece.name is None or piece.name == names[piece.index]
            args[piece.index].append(piece.arguments)
        else:
            raise AssertionError(f"unexpected piece {piece!r}")
    final: list[Event] = []
    for event in events:
        if event[0] == "call":
            index = event[1]
            assert isinstance(index, int)
            joined = "".join(args[index])
            assert isinstance(json.loads(joined), dict), joined
            final.append(("call", index, names[index], joined))
        else:
            final.append(event)
    return Parsed(tuple(final))


def parse_all_ways(make: Callable[[], AnyParser], text: str, seed: int = 0) -> Parsed:
    """Parse text under every split; assert they agree and return the common result."""
    whole = collect(make(), [text])
    for deltas in splits(text, seed):
        got = collect(make(), deltas)
        assert got == whole, f"split {[len(d) for d in deltas][:20]} disagrees:\n{got}\nvs whole:\n{whole}"
    return whole


def call(index: int, name: str, arguments: dict[str, object]) -> Event:
    """The event a complete call normalises to."""
    return ("call", index, name, json.dumps(arguments, ensure_ascii=False))


def text(value: str) -> Event:
    return ("text", value)


def reasoning(value: str) -> Event:
    return ("reasoning", value)
