"""Thin handlers: parse and authorize at the edge, hand the pipeline typed requests, serialize its results."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import anyio
import msgspec
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from vresponses.api import gradient
from vresponses.api.auth import Keys
from vresponses.api.errors import from_validation
from vresponses.api.metrics import observe
from vresponses.api.replicas import health_detail
from vresponses.api.schema import CreateResponse, to_request
from vresponses.errors import BodyTooLarge, InvalidRequest, NotFound, Unavailable
from vresponses.pipeline.events import Event
from vresponses.pipeline.items import (
    FunctionCall,
    FunctionCallOutput,
    Item,
    Message,
    OutputText,
    Reasoning,
    decode_items,
)
from vresponses.pipeline.jobs import Jobs
from vresponses.pipeline.response import ResponseObject, decode_response
from vresponses.pipeline.service import Responder, tenant_of
from vresponses.store.base import CANCELLED, UNFINISHED, StoredResponse

_JSON = "application/json"


class State:
    """What the handlers share: set up by the app's lifespan."""

    def __init__(self, responder: Responder, jobs: Jobs, keys: Keys, max_body: int) -> None:
        self.responder = responder
        self.jobs = jobs
        self.keys = keys
        self.max_body = max_body


def _state(request: Request) -> State:
    state: State = request.app.state.vr
    return state


def _json(obj: Any, status: int = 200) -> Response:
    return Response(gradient.encode(obj), status_code=status, media_type=_JSON)


async def _read_json(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"The request body is larger than {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"The request body is larger than {limit} bytes.")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise InvalidRequest("The request body is empty; send a JSON object.")
    try:
        data = msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidRequest(f"The request body nests deeper than {MAX_DEPTH} levels.") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    if _depth(data) > MAX_DEPTH:
        # Validators and schema checkers below recurse; refuse what would exhaust their stack.
        raise InvalidRequest(f"The request body nests deeper than {MAX_DEPTH} levels.")
    return data


MAX_DEPTH = 64


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in a decoded JSON value (iteratively: no recursion to exhaust)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


async def create_response(request: Request) -> Response:
    """POST /v1/responses."""
    st = _state(request)
    key = st.keys.check(request)
    data = await _read_json(request, st.max_body)
    try:
        body = CreateResponse.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc) from None
    req = to_request(body, tenant_of(key))
    served = st.responder.engine.info.name
    if req.model != served:
        raise NotFound(
            f"The model {req.model!r} does not exist; this server serves {served!r}.",
            param="model",
            code="model_not_found",
        )
    prepared = await st.responder.prepare(req)
    if req.background:
        await st.jobs.submit(prepared)
        return _json(gradient.response_wire(prepared.response))
    if req.stream:
        writer = gradient.ChunkWriter(prepared.response, req.include_usage, req.top_logprobs is not None)
        # The engine validates some inputs (e.g. grammar features) only when the request is added: wait for the
        # first event so such a rejection is still a plain 4xx, before any stream starts.
        events = st.responder.run(prepared)
        first = await anext(events)
        return EventSourceResponse(gradient.sse(writer, _resume(first, events)), ping=15, sep="\n")
    result = await _until_done_or_gone(request, st.responder, prepared)
    return _json(gradient.response_wire(result))


async def _resume(first: Event, rest: AsyncGenerator[Event, None]) -> AsyncGenerator[Event, None]:
    yield first
    async with aclosing(rest):
        async for event in rest:
            yield event


async def _until_done_or_gone(request: Request, responder: Responder, prepared: Any) -> ResponseObject:
    # A non-streaming client that hangs up should not keep the engine busy: watch for the disconnect.
    response = prepared.response  # what is returned to a client that has gone (nobody reads it)
    try:
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                while (await request.receive())["type"] != "http.disconnect":
                    pass
                tg.cancel_scope.cancel()

            tg.start_soon(watch)
            response = await responder.complete(prepared)
            tg.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # The task group wraps the generation's own error (an engine failure is a 503, not a 500): unwrap it.
        raise group.exceptions[0] from None
    return response


async def _owned(request: Request) -> tuple[State, str, StoredResponse]:
    st = _state(request)
    tenant = tenant_of(st.keys.check(request))
    response_id = request.path_params["response_id"]
    row = await st.responder.store.get(response_id, tenant)
    if row is None:
        raise NotFound(f"No response with id {response_id!r} was found.", param="response_id")
    return st, tenant, row


def _stored(row: StoredResponse) -> ResponseObject:
    response = decode_response(row.body)
    response.status = row.status  # the column is authoritative (a lease may have expired since)
    return response


async def get_response(request: Request) -> Response:
    """GET /v1/responses/{id}."""
    _, _, row = await _owned(request)
    return _json(gradient.response_wire(_stored(row)))


async def delete_response(request: Request) -> Response:
    """DELETE /v1/responses/{id}."""
    st, tenant, row = await _owned(request)
    await st.jobs.cancel_local(row.id)
    await st.responder.store.delete(row.id, tenant)
    return _json({"id": row.id, "object": "response.deleted", "deleted": True})


async def cancel_response(request: Request) -> Response:
    """POST /v1/responses/{id}/cancel: stop a background response (here, or via the store in another process)."""
    st, tenant, row = await _owned(request)
    if not _stored(row).background:
        raise InvalidRequest("Only background responses can be cancelled.", param="response_id")
    if row.status in UNFINISHED and not await st.jobs.cancel_local(row.id):
        await st.responder.store.request_cancel(row.id, tenant)
        with anyio.move_on_after(10):
            # The owning process polls the flag; poll the row until it has acted on it.
            while (fresh := await st.responder.store.get(row.id, tenant)) and fresh.status in UNFINISHED:  # noqa: ASYNC110
                await anyio.sleep(0.2)
    fresh = await st.responder.store.get(row.id, tenant)
    response = _stored(fresh or row)
    if response.status in UNFINISHED:
        response.status = CANCELLED
    return _json(gradient.response_wire(response))


def item_wire(item: Item, index: int, response_id: str) -> dict[str, Any]:
    """An input item as listed by /input_items."""
    item_id = getattr(item, "id", None) or f"item_{response_id[5:17]}_{index}"
    if isinstance(item, Message):
        out: dict[str, Any] = {
            "type": "message",
            "id": item_id,
            "role": item.role,
            "content": [{"type": "input_text", "text": item.content}],
        }
        if item.tool_calls:
            out["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in item.tool_calls
            ]
        if item.tool_call_id:
            out["tool_call_id"] = item.tool_call_id
        return out
    if isinstance(item, FunctionCall):
        return {
            "type": "function_call",
            "id": item_id,
            "call_id": item.call_id,
            "name": item.name,
            "arguments": item.arguments,
        }
    if isinstance(item, FunctionCallOutput):
        return {"type": "function_call_output", "id": item_id, "call_id": item.call_id, "output": item.output}
    if isinstance(item, Reasoning):
        return {
            "type": "reasoning",
            "id": item_id,
            "content": [{"type": "reasoning_text", "text": item.text}],
            "summary": [],
        }
    assert isinstance(item, OutputText)
    return {"type": "text", "id": item_id, "text": item.text}


async def list_input_items(request: Request) -> Response:
    """GET /v1/responses/{id}/input_items?limit=&after=&order=."""
    _, _, row = await _owned(request)
    q = request.query_params
    order = q.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("order must be 'asc' or 'desc'.", param="order")
    raw_limit = q.get("limit", "20")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 100:
        raise InvalidRequest("limit must be an integer from 1 to 100.", param="limit")
    limit = int(raw_limit)
    items = [item_wire(it, i, row.id) for i, it in enumerate(decode_items(row.input_items))]
    if order == "desc":
        items.reverse()
    after = q.get("after")
    if after is not None:
        ids = [it["id"] for it in items]
        if after not in ids:
            raise InvalidRequest(f"No input item with id {after!r} in this response.", param="after")
        items = items[ids.index(after) + 1 :]
    page = items[:limit]
    return _json(
        {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(items) > limit,
        }
    )


async def list_models(request: Request) -> Response:
    """GET /v1/models."""
    st = _state(request)
    st.keys.check(request)
    info = st.responder.engine.info
    model = {
        "id": info.name,
        "object": "model",
        "created": info.created,
        "owned_by": "vresponses",
        "max_model_len": info.max_model_len,
    }
    return _json({"object": "list", "data": [model]})


async def health(request: Request) -> Response:
    """GET /health: 200 when the engine can serve, 503 when it is dead."""
    st = _state(request)
    if not await st.responder.engine.healthy():
        raise Unavailable("The engine is not running.")
    return _json({"status": "ok", **health_detail(st.responder.engine)})


async def metrics(request: Request) -> Response:
    """GET /metrics: Prometheus text format."""
    st = _state(request)
    st.keys.check(request)
    observe(st)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


routes = [
    Route("/v1/responses", create_response, methods=["POST"]),
    Route("/v1/responses/{response_id}", get_response, methods=["GET"]),
    Route("/v1/responses/{response_id}", delete_response, methods=["DELETE"]),
    Route("/v1/responses/{response_id}/input_items", list_input_items, methods=["GET"]),
    Route("/v1/responses/{response_id}/cancel", cancel_response, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/health", health, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
