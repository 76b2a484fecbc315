"""WebSocket mode: `response.create` messages in, the dialect's events out as JSON messages, one turn at a time.

A connection keeps its `store: false` responses in memory so a later turn on the same socket can continue them
by `previous_response_id`; a new connection cannot (`previous_response_not_found`), and a turn that fails forgets
the response it tried to continue.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from vresponses.api import errors
from vresponses.api.body import decode_object
from vresponses.api.gate import admit
from vresponses.api.state import State, parse_request, state
from vresponses.api.wire import encode
from vresponses.errors import APIError, InvalidRequest
from vresponses.pipeline.events import Failed, Finished
from vresponses.pipeline.service import Conversation

if TYPE_CHECKING:
    from vresponses.api.dialect import Dialect

# Responses one connection holds in memory for continuation; the oldest go first beyond this.
MAX_HELD = 32
# Fields of an HTTP request that a WebSocket `response.create` must not carry.
HTTP_ONLY = ("stream", "stream_options", "background")


def error_frame(exc: APIError) -> str:
    """The error envelope of WebSocket mode."""
    body = {"type": exc.type, "code": exc.code or exc.type, "message": exc.message, "param": exc.param}
    return encode({"type": "error", "status": exc.status, "error": body}).decode()


def _create_body(data: dict[str, Any]) -> dict[str, Any]:
    if data.get("type") != "response.create":
        raise InvalidRequest("Send messages of type 'response.create'.", param="type")
    for name in HTTP_ONLY:
        if name in data:
            raise InvalidRequest(f"{name!r} is an HTTP field; WebSocket mode always streams.", param=name)
    return {k: v for k, v in data.items() if k != "type"}


def websocket_session(dialect: Dialect) -> Callable[[WebSocket], Awaitable[None]]:
    """The endpoint serving one WebSocket connection in this dialect."""

    async def session(ws: WebSocket) -> None:
        st = state(ws)
        try:
            st.keys.check(ws)
        except APIError as exc:
            await ws.close(code=1008, reason=exc.message[:120])
            return
        await ws.accept()
        held: OrderedDict[str, Conversation] = OrderedDict()
        try:
            while True:
                await _turn(ws, st, held, await ws.receive_text())
        except WebSocketDisconnect:
            return

    async def _turn(ws: WebSocket, st: State, held: OrderedDict[str, Conversation], raw: str) -> None:
        previous: str | None = None
        try:
            data = decode_object(raw)
            previous = data.get("previous_response_id") if isinstance(data.get("previous_response_id"), str) else None
            req = await parse_request(st, ws, _create_body(data))
            prepared = await st.responder.prepare(req, held)
            admit(ws, prepared, background=False)
        except Exception as exc:
            _forget(held, previous)
            await ws.send_text(error_frame(errors.translate(exc)))
            return
        frames = dialect.frames(prepared.response)
        async with aclosing(st.responder.run(prepared)) as events:
            first = True
            async for event in events:
                if first and isinstance(event, Failed):
                    _forget(held, previous)
                    await ws.send_text(error_frame(errors.translate(event.error)))
                    return
                first = False
                for payload in frames(event):
                    await ws.send_text(payload)
                if isinstance(event, Failed):
                    _forget(held, previous)
                elif isinstance(event, Finished) and not event.response.store:
                    held[event.response.id] = Conversation(event.response, prepared.history)
                    while len(held) > MAX_HELD:
                        held.popitem(last=False)

    return session


def _forget(held: OrderedDict[str, Conversation], response_id: str | None) -> None:
    if response_id is not None:
        held.pop(response_id, None)
