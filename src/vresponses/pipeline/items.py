"""Conversation items inside the pipeline: what a turn takes in and gives out, typed, dialect-free and storable."""

from __future__ import annotations

import json
import secrets

import msgspec

from vresponses.engines.base import TokenLogprob


class ToolCall(msgspec.Struct, frozen=True):
    """A call the assistant made (chat form): its id, the function name and the JSON arguments string."""

    id: str
    name: str
    arguments: str


class Annotation(msgspec.Struct, frozen=True):
    """A citation in a message's text: the span [start, end) cites url."""

    url: str
    title: str
    start_index: int
    end_index: int


class Message(msgspec.Struct, frozen=True, tag="message"):
    """A message; the assistant's carry an id once produced here, and may carry calls (chat form) and logprobs."""

    role: str
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    id: str | None = None
    status: str | None = None
    logprobs: tuple[TokenLogprob, ...] | None = None
    annotations: tuple[Annotation, ...] = ()


class FunctionCall(msgspec.Struct, frozen=True, tag="function_call"):
    """A function call the assistant made, as a Responses item.

    A call to a client's freeform tool (`custom`) is a call whose arguments are `{"input": text}`, as the model was
    offered it; `namespace` names the client's namespace tool the function belongs to.
    """

    call_id: str
    name: str
    arguments: str
    id: str | None = None
    status: str | None = None
    custom: bool = False
    namespace: str | None = None

    @property
    def input(self) -> str:
        """A custom call's freeform input: the `input` argument, or the arguments as written if they hold none."""
        try:
            value = json.loads(self.arguments)
        except ValueError:
            return self.arguments
        found = value.get("input") if isinstance(value, dict) else None
        return found if isinstance(found, str) else self.arguments


def custom_arguments(text: str) -> str:
    """The arguments of a custom tool call whose freeform input is text."""
    return json.dumps({"input": text}, ensure_ascii=False)


class FunctionCallOutput(msgspec.Struct, frozen=True, tag="function_call_output"):
    """The result of executing a function call, sent back by the client (`custom`: of a freeform tool's call)."""

    call_id: str
    output: str
    id: str | None = None
    custom: bool = False


class Reasoning(msgspec.Struct, frozen=True, tag="reasoning"):
    """The assistant's reasoning text (and a summary, when one was written)."""

    id: str
    text: str
    encrypted_content: str | None = None
    summary: tuple[str, ...] = ()
    status: str | None = None


class Source(msgspec.Struct, frozen=True):
    """A web page a search returned."""

    url: str
    title: str = ""


class WebSearchCall(msgspec.Struct, frozen=True, tag="web_search_call"):
    """A search the server ran for the model: the query, what it found, and the text the model read."""

    id: str
    status: str
    query: str
    sources: tuple[Source, ...] = ()
    # The tool output as the model read it (kept so a later turn renders the same conversation).
    results: str = ""
    error: str | None = None


class Compaction(msgspec.Struct, frozen=True, tag="compaction"):
    """A summary standing in for the earlier conversation (made by /responses/compact)."""

    id: str
    summary: str


class ItemReference(msgspec.Struct, frozen=True, tag="item_reference"):
    """An input item given by the id of an item earlier in the conversation; resolved before anything runs."""

    id: str


class OutputText(msgspec.Struct, frozen=True, tag="text"):
    """Text the assistant produced, as rows written before messages had ids store it."""

    text: str


Item = Message | FunctionCall | FunctionCallOutput | Reasoning | WebSearchCall | Compaction | ItemReference | OutputText
_ENCODE = msgspec.json.Encoder()
_DECODE = msgspec.json.Decoder(list[Item])


def encode_items(items: list[Item] | tuple[Item, ...]) -> bytes:
    """Serialize items for the store."""
    return _ENCODE.encode(items)


def decode_items(data: bytes) -> list[Item]:
    """Read items written by encode_items."""
    return _DECODE.decode(data)


def new_id(prefix: str) -> str:
    """A fresh item id such as msg_…, rs_…, fc_…, ws_…."""
    return f"{prefix}_{secrets.token_hex(12)}"
