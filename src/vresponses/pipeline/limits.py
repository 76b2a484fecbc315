"""Bounds on what one request may send, store and reload, checked before any work grows with them.

Each breach is a 400 that names the parameter and the limit. The context-length check only bounds what is
tokenized; these also bound what is not (reasoning a template drops, `encrypted_content`, ids, tools under
`tool_choice: "none"`), which would otherwise be stored and reloaded with every later turn of a chain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from vresponses.errors import InvalidRequest
from vresponses.pipeline.items import encode_items
from vresponses.pipeline.request import ResponseRequest

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-request bounds; the defaults leave room for any conversation a model's context can hold."""

    max_input_items: int = 2048
    max_tools: int = 128
    # One input item as stored (its text, arguments, ids, encrypted_content together).
    max_item_bytes: int = 1 * MiB
    # What one request stores besides its generated output: input items, instructions, tools, metadata, user.
    max_stored_bytes: int = 4 * MiB
    # The stored items of a whole previous_response_id chain: what rendering the next turn reloads.
    max_chain_bytes: int = 16 * MiB


def check_wire(data: Mapping[str, Any], limits: Limits) -> None:
    """Refuse a decoded request body with too many input items or tools, before it is validated item by item."""
    items = data.get("input")
    if isinstance(items, list) and len(items) > limits.max_input_items:
        raise InvalidRequest(
            f"'input' holds {len(items)} items; the limit is {limits.max_input_items} per request "
            "(continue a long conversation with previous_response_id).",
            param="input",
            code="too_many_input_items",
        )
    tools = data.get("tools")
    if isinstance(tools, list) and len(tools) > limits.max_tools:
        raise InvalidRequest(
            f"'tools' holds {len(tools)} tools; the limit is {limits.max_tools}.", param="tools", code="too_many_tools"
        )


_ENCODE = msgspec.json.Encoder()


def check_request(req: ResponseRequest, limits: Limits) -> None:
    """Refuse a request whose items, or whose stored part as a whole, are larger than the limits allow."""
    check_wire({"input": list(req.items), "tools": list(req.tools)}, limits)
    total = 0
    for i, item in enumerate(req.items):
        size = len(encode_items([item]))
        if size > limits.max_item_bytes:
            raise InvalidRequest(
                f"input[{i}] is {size} bytes; the limit is {limits.max_item_bytes} bytes per item.",
                param=f"input[{i}]",
                code="input_item_too_large",
            )
        total += size
    total += len(_ENCODE.encode([req.instructions, req.tools, req.metadata, req.user]))
    if total > limits.max_stored_bytes:
        raise InvalidRequest(
            f"This request would store {total} bytes (input items, instructions, tools); "
            f"the limit is {limits.max_stored_bytes} bytes per response.",
            param="input",
            code="request_too_large",
        )


def chain_too_large(total: int, limits: Limits) -> InvalidRequest:
    """The error for a previous_response_id chain whose stored items exceed max_chain_bytes."""
    return InvalidRequest(
        f"The conversation ending at previous_response_id holds more than {limits.max_chain_bytes} bytes of "
        f"stored items ({total} and counting); start a new conversation or send the context you need as input.",
        param="previous_response_id",
        code="conversation_too_large",
    )
