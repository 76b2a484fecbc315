"""Conversation items inside the pipeline: what a turn takes in and gives out, typed and storable."""

from __future__ import annotations

import msgspec


class ToolCall(msgspec.Struct, frozen=True):
    """A call the assistant made: its id, the function name and the JSON arguments string."""

    id: str
    name: str
    arguments: str


class Message(msgspec.Struct, frozen=True, tag="message"):
    """A chat message; assistant messages may carry tool calls, tool messages the id they answer."""

    role: str
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


class FunctionCall(msgspec.Struct, frozen=True, tag="function_call"):
    """A function call the assistant made, as a Responses item."""

    call_id: str
    name: str
    arguments: str
    id: str | None = None
    status: str | None = None


class FunctionCallOutput(msgspec.Struct, frozen=True, tag="function_call_output"):
    """The result of executing a function call, sent back by the client."""

    call_id: str
    output: str
    id: str | None = None


class Reasoning(msgspec.Struct, frozen=True, tag="reasoning"):
    """The assistant's reasoning text."""

    id: str
    text: str
    encrypted_content: str | None = None


class OutputText(msgspec.Struct, frozen=True, tag="text"):
    """Text the assistant produced in this turn."""

    text: str


Item = Message | FunctionCall | FunctionCallOutput | Reasoning | OutputText
_ENCODE = msgspec.json.Encoder()
_DECODE = msgspec.json.Decoder(list[Item])


def encode_items(items: list[Item] | tuple[Item, ...]) -> bytes:
    """Serialize items for the store."""
    return _ENCODE.encode(items)


def decode_items(data: bytes) -> list[Item]:
    """Read items written by encode_items."""
    return _DECODE.decode(data)
