"""Typed output events: what a response's run yields, in the order the model produced things.

Each dialect serializes the same events; non-streaming is the same events folded (the `Finished` response).
Ids are minted when an item starts, so what a stream shows is what a later GET returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from vresponses.engines.base import TokenLogprob
from vresponses.status import Status, status_of

__all__ = ["Status", "status_of"]  # re-exported: events and statuses travel together

if TYPE_CHECKING:
    from vresponses.pipeline.items import Item
    from vresponses.pipeline.response import ResponseObject


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one response."""

    input_tokens: int
    cached_tokens: int
    output_tokens: int
    reasoning_tokens: int = 0
    # Tokens of server-run tool results (web search) the model read; counted in input_tokens too.
    tool_output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


ItemKind = Literal["message", "reasoning", "function_call", "web_search_call"]


@dataclass(frozen=True, slots=True)
class Started:
    """First, always: the response as created (status in progress, settings it runs with, no output)."""

    response: ResponseObject


@dataclass(frozen=True, slots=True)
class ItemStarted:
    """A new output item begins; calls carry their call id, name and tool kind, web searches their query."""

    item_id: str
    output_index: int
    kind: ItemKind
    call_id: str | None = None
    name: str | None = None
    # A call to a client's freeform tool, or to a function of one of its namespace tools.
    custom: bool = False
    namespace: str | None = None
    query: str | None = None


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of a message's text, with the logprobs of the tokens that made it when asked."""

    item_id: str
    output_index: int
    text: str
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A piece of a reasoning item's text."""

    item_id: str
    output_index: int
    text: str


@dataclass(frozen=True, slots=True)
class ArgumentsDelta:
    """A piece of a function call's arguments as they grow."""

    item_id: str
    output_index: int
    text: str


@dataclass(frozen=True, slots=True)
class SearchUpdate:
    """A server-run web search moved on: `in_progress` → `searching` → `completed` | `failed`."""

    item_id: str
    output_index: int
    status: str


@dataclass(frozen=True, slots=True)
class ItemDone:
    """An output item is complete: the value that is stored and returned."""

    output_index: int
    item: Item


@dataclass(frozen=True, slots=True)
class Finished:
    """Last, exactly once on success: the final response (output, usage, status, finish reason)."""

    response: ResponseObject


@dataclass(frozen=True, slots=True)
class Failed:
    """Last instead of Finished when generation broke: the response as stored, and the cause."""

    response: ResponseObject
    error: Exception


Event = (
    Started | ItemStarted | TextDelta | ReasoningDelta | ArgumentsDelta | SearchUpdate | ItemDone | Finished | Failed
)
# What one generation yields between Started and Finished.
ItemEvent = ItemStarted | TextDelta | ReasoningDelta | ArgumentsDelta | SearchUpdate | ItemDone
