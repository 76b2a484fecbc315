"""What a wire dialect is: a serializer of the pipeline's responses and events; routes pick one by path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from vresponses.pipeline.events import Event
from vresponses.pipeline.items import Item
from vresponses.pipeline.response import ResponseObject


class Dialect(Protocol):
    """Renders responses, input items and event streams; reads nothing and decides nothing."""

    name: str
    # Whether the dialect has a WebSocket mode (then `frames` writes its messages).
    websocket: bool

    def response(self, r: ResponseObject) -> dict[str, Any]:
        """The response body for create, retrieve and cancel."""
        ...

    def input_item(self, item: Item, item_id: str) -> dict[str, Any]:
        """One entry of /input_items."""
        ...

    def frames(self, response: ResponseObject) -> Callable[[Event], list[str]]:
        """A writer of one response's events as WebSocket messages (JSON text), for dialects that have them."""
        ...

    def stream(
        self, response: ResponseObject, events: AsyncIterator[Event], include_usage: bool, skip: int = 0
    ) -> AsyncIterator[bytes]:
        """The server-sent-event body of a streamed response, from its events, leaving out the first `skip`."""
        ...
