"""What every model-output parser shares: the pieces it emits, the tool spec it reads, and the name registry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function tool as offered to the model: name, description and JSON Schema parameters.

    `custom`: the client declared a freeform tool (offered as a function of one string, `input`); `namespace`: the
    client's namespace tool it came from. Both only change how calls to it are written back to that client.
    """

    name: str
    description: str | None = None
    parameters: Mapping[str, object] = field(default_factory=lambda: {"type": "object", "properties": {}})
    custom: bool = False
    namespace: str | None = None


@dataclass(frozen=True, slots=True)
class Text:
    """Plain content for the user."""

    text: str


@dataclass(frozen=True, slots=True)
class Reasoning:
    """Reasoning (thinking) text."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallChunk:
    """A fragment of the index-th tool call; name is set on the first fragment of a call, arguments accumulate."""

    index: int
    name: str | None
    arguments: str


Piece = Text | Reasoning | ToolCallChunk


@dataclass(frozen=True, slots=True)
class CallFormat:
    """How a JSON-argument call is written in a parser's format, for constrained decoding.

    One call is `begin` + JSON object + `end`; several calls are joined by `separator` inside `prefix`/`suffix`.
    The JSON object is `{name_key: <name>, args_key: <arguments>}`.
    """

    prefix: str
    begin: str
    end: str
    separator: str
    suffix: str
    name_key: str = "name"
    args_key: str = "arguments"


class ToolParser:
    """Splits model output into text and tool calls; fed deltas, then finished (non-streaming is one feed)."""

    name: ClassVar[str]
    # None when calls in this format are not a JSON object (then constrained decoding emits plain JSON calls).
    call_format: ClassVar[CallFormat | None] = None
    # True when the format's markers are special tokens, which detokenizing would otherwise drop.
    keeps_special_tokens: ClassVar[bool] = False

    def __init__(self, tools: Sequence[ToolSpec]) -> None:
        self.tools = tools

    def feed(self, text: str) -> list[Piece]:
        """Take the next delta of model output; return what is now certain (text held back may be markup)."""
        raise NotImplementedError

    def finish(self) -> list[Piece]:
        """Flush whatever is held back at the end of generation."""
        raise NotImplementedError


class ReasoningParser:
    """Splits model output into reasoning and the rest; fed deltas, then finished."""

    name: ClassVar[str]

    def __init__(self, prompt_opens_reasoning: bool = False) -> None:
        self.prompt_opens_reasoning = prompt_opens_reasoning

    def feed(self, text: str) -> list[Text | Reasoning]:
        """Take the next delta of model output; return what is now certain."""
        raise NotImplementedError

    def finish(self) -> list[Text | Reasoning]:
        """Flush whatever is held back at the end of generation."""
        raise NotImplementedError


class UnknownParser(LookupError):
    """No parser is registered under that name."""


TOOL_PARSERS: dict[str, type[ToolParser]] = {}
REASONING_PARSERS: dict[str, type[ReasoningParser]] = {}


def tool_parser(cls: type[ToolParser]) -> type[ToolParser]:
    """Register a tool parser class under its name."""
    TOOL_PARSERS[cls.name] = cls
    return cls


def reasoning_parser(cls: type[ReasoningParser]) -> type[ReasoningParser]:
    """Register a reasoning parser class under its name."""
    REASONING_PARSERS[cls.name] = cls
    return cls


def lookup(registry: Mapping[str, T], name: str, kind: str) -> T:
    """Return the registered entry or raise UnknownParser listing the known names."""
    try:
        return registry[name]
    except KeyError:
        known = ", ".join(sorted(registry))
        raise UnknownParser(f"unknown {kind} parser {name!r}; known: {known}") from None
