"""Typed output events: what generation yields, what dialects serialize and what collect() folds."""

from __future__ import annotations

from dataclasses import dataclass

from vresponses.engines.base import TokenLogprob


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one response."""

    input_tokens: int
    cached_tokens: int
    output_tokens: int
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the assistant's content, with the logprobs of the tokens that made it when asked."""

    text: str
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A piece of reasoning text."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of a tool call: id and name on its first fragment, arguments accumulate."""

    index: int
    call_id: str
    name: str | None
    arguments: str


@dataclass(frozen=True, slots=True)
class Finished:
    """The last event: why generation stopped and what it cost."""

    finish_reason: str
    usage: Usage
    # The replica that generated this (remote engines); stored so the conversation's next turn can go back to it.
    replica: str | None = None


Event = TextDelta | ReasoningDelta | ToolCallDelta | Finished
