"""A finished response's events, rebuilt from what was stored: replaying a stream after the fact."""

from __future__ import annotations

import msgspec

from vresponses.errors import APIError
from vresponses.pipeline.events import (
    ArgumentsDelta,
    Event,
    Failed,
    Finished,
    ItemDone,
    ItemEvent,
    ItemStarted,
    ReasoningDelta,
    SearchUpdate,
    Started,
    Status,
    TextDelta,
)
from vresponses.pipeline.items import FunctionCall, Item, Message, OutputText, Reasoning, WebSearchCall
from vresponses.pipeline.response import ResponseObject


class ReplayedFailure(APIError):
    """The failure a stored response recorded (its message is what was stored)."""

    status = 500
    type = "server_error"


def _item_events(index: int, item: Item) -> list[ItemEvent]:
    if isinstance(item, OutputText):
        item = Message(role="assistant", content=item.text, id=f"msg_replayed_{index}", status="completed")
    if isinstance(item, Message):
        item_id = item.id or f"msg_replayed_{index}"
        return [
            ItemStarted(item_id, index, "message"),
            TextDelta(item_id, index, item.content, item.logprobs or ()),
            ItemDone(index, item),
        ]
    if isinstance(item, Reasoning):
        return [
            ItemStarted(item.id, index, "reasoning"),
            ReasoningDelta(item.id, index, item.text),
            ItemDone(index, item),
        ]
    if isinstance(item, FunctionCall):
        item_id = item.id or item.call_id
        return [
            ItemStarted(item_id, index, "function_call", item.call_id, item.name, item.custom, item.namespace),
            ArgumentsDelta(item_id, index, item.arguments),
            ItemDone(index, item),
        ]
    if isinstance(item, WebSearchCall):
        return [
            ItemStarted(item.id, index, "web_search_call", query=item.query),
            SearchUpdate(item.id, index, "in_progress"),
            SearchUpdate(item.id, index, "searching"),
            SearchUpdate(item.id, index, item.status),
            ItemDone(index, item),
        ]
    return [ItemDone(index, item)]


def events_of(response: ResponseObject) -> list[Event]:
    """Started, each output item whole, then Finished (or Failed): the same shape a live run streams."""
    begun = msgspec.structs.replace(response, status=Status.IN_PROGRESS, output=[], usage=None, completed_at=None)
    events: list[Event] = [Started(begun)]
    for index, item in enumerate(response.output):
        events.extend(_item_events(index, item))
    if response.status == Status.FAILED:
        events.append(
            Failed(response, ReplayedFailure(response.error or "The response failed.", code=response.error_code))
        )
    else:
        events.append(Finished(response))
    return events
