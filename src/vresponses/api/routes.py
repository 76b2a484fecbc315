"""Thin handlers: parse and authorize at the edge, hand the pipeline typed requests, let the dialect serialize."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing

import anyio
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sse_starlette import EventSourceResponse
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from vresponses.api.body import read_json
from vresponses.api.dialect import Dialect
from vresponses.api.gate import admit
from vresponses.api.gradient import Gradient
from vresponses.api.metrics import observe
from vresponses.api.openai_dialect import OpenAI
from vresponses.api.openapi import document
from vresponses.api.replay import replay
from vresponses.api.replicas import health_detail
from vresponses.api.state import State, json_response, parse_request, state
from vresponses.api.websocket import websocket_session
from vresponses.api.wire import usage_wire
from vresponses.errors import InvalidRequest, NotFound, Unavailable
from vresponses.pipeline.compact import compact
from vresponses.pipeline.events import Event, Failed, Status
from vresponses.pipeline.items import decode_items
from vresponses.pipeline.response import ResponseObject, decode_response
from vresponses.pipeline.service import Prepared, Responder
from vresponses.store.base import StoredResponse

# A client that stops reading a stream for this long is dropped (its generation is aborted and stored).
SEND_TIMEOUT_SECONDS = 60.0


async def started(events: AsyncGenerator[Event, None]) -> AsyncIterator[Event]:
    """The events, after checking the first: a run that failed before its first event raises its error."""
    first = await anext(events)
    if isinstance(first, Failed):
        await events.aclose()
        raise first.error

    async def resumed() -> AsyncIterator[Event]:
        yield first
        async with aclosing(events):
            async for event in events:
                yield event

    return resumed()


def _create(dialect: Dialect) -> Callable[[Request], Awaitable[Response]]:
    async def create_response(request: Request) -> Response:
        """POST /responses."""
        st = state(request)
        req = await parse_request(st, request, await read_json(request, st.max_body))
        prepared = await st.responder.prepare(req)
        admit(request, prepared, req.background)  # admission bounds (400/429) before any engine work
        if req.background:
            await st.jobs.submit(prepared)
            return json_response(dialect.response(prepared.response))
        if req.stream:
            # The engine validates some inputs only when the request is added: wait for the first event so such
            # a rejection is still a plain 4xx, before any stream starts.
            events = await started(st.responder.run(prepared))
            body = dialect.stream(prepared.response, events, req.include_usage)
            return EventSourceResponse(body, ping=15, sep="\n", send_timeout=SEND_TIMEOUT_SECONDS)
        result = await _until_done_or_gone(request, st.responder, prepared)
        if result is None:
            return Response(status_code=499)  # the client went away; there is no one to answer
        return json_response(dialect.response(result))

    return create_response


async def _until_done_or_gone(request: Request, responder: Responder, prepared: Prepared) -> ResponseObject | None:
    # A non-streaming client that hangs up should not keep the engine busy: watch for the disconnect.
    result: ResponseObject | None = None
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass
            tg.cancel_scope.cancel()

        tg.start_soon(watch)
        result = await responder.complete(prepared)
        tg.cancel_scope.cancel()
    return result


async def owned(conn: HTTPConnection) -> tuple[State, str, StoredResponse]:
    """The caller's stored response named in the path; 404 if it is missing or another key's."""
    st = state(conn)
    tenant = await st.responder.tenants.resolve(st.keys.check(conn))
    response_id = conn.path_params["response_id"]
    row = await st.responder.store.get(response_id, tenant)
    if row is None:
        raise NotFound(f"No response with id {response_id!r} was found.", param="response_id")
    return st, tenant, row


def stored(row: StoredResponse) -> ResponseObject:
    """The stored response; the status column is authoritative (a lease may have expired since)."""
    return decode_response(row.body).with_status(Status(row.status))


def _get(dialect: Dialect) -> Callable[[Request], Awaitable[Response]]:
    async def get_response(request: Request) -> Response:
        """GET /responses/{id} (`?stream=true&starting_after=N` replays its events)."""
        st, tenant, row = await owned(request)
        if request.query_params.get("stream") not in (None, "false"):
            after = request.query_params.get("starting_after", "-1")
            if not after.lstrip("-").isdigit():
                raise InvalidRequest("starting_after must be an integer.", param="starting_after")
            body = replay(dialect, st, tenant, row, int(after))
            return EventSourceResponse(body, ping=15, sep="\n", send_timeout=SEND_TIMEOUT_SECONDS)
        return json_response(dialect.response(stored(row)))

    return get_response


async def delete_response(request: Request) -> Response:
    """DELETE /responses/{id} (the same in every dialect)."""
    st, tenant, row = await owned(request)
    await st.jobs.cancel_local(row.id)
    await st.responder.store.delete(row.id, tenant)
    return json_response({"id": row.id, "object": "response.deleted", "deleted": True})


def _cancel(dialect: Dialect) -> Callable[[Request], Awaitable[Response]]:
    async def cancel_response(request: Request) -> Response:
        """POST /responses/{id}/cancel: stop a background response (here, or via the store in another process)."""
        st, tenant, row = await owned(request)
        if not stored(row).background:
            raise InvalidRequest("Only background responses can be cancelled.", param="response_id")
        if not Status(row.status).final and not await st.jobs.cancel_local(row.id):
            await st.responder.store.request_cancel(row.id, tenant)
            with anyio.move_on_after(10):
                # The owning process polls the flag; poll the row until it has acted on it.
                while (fresh := await st.responder.store.get(row.id, tenant)) and not Status(fresh.status).final:  # noqa: ASYNC110
                    await anyio.sleep(0.2)
        fresh = await st.responder.store.get(row.id, tenant)
        response = stored(fresh or row)
        if not response.status.final:
            response = response.with_status(Status.CANCELLED)
        return json_response(dialect.response(response))

    return cancel_response


def _input_items(dialect: Dialect) -> Callable[[Request], Awaitable[Response]]:
    async def list_input_items(request: Request) -> Response:
        """GET /responses/{id}/input_items?limit=&after=&order=."""
        _, _, row = await owned(request)
        q = request.query_params
        order = q.get("order", "desc")
        if order not in ("asc", "desc"):
            raise InvalidRequest("order must be 'asc' or 'desc'.", param="order")
        raw_limit = q.get("limit", "20")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 100:
            raise InvalidRequest("limit must be an integer from 1 to 100.", param="limit")
        limit = int(raw_limit)
        prefix = f"item_{row.id[5:17]}_"
        items = [
            dialect.input_item(it, getattr(it, "id", None) or f"{prefix}{i}")
            for i, it in enumerate(decode_items(row.input_items))
        ]
        if order == "desc":
            items.reverse()
        after = q.get("after")
        if after is not None:
            ids = [it["id"] for it in items]
            if after not in ids:
                raise InvalidRequest(f"No input item with id {after!r} in this response.", param="after")
            items = items[ids.index(after) + 1 :]
        page = items[:limit]
        return json_response(
            {
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(items) > limit,
            }
        )

    return list_input_items


async def input_tokens(request: Request) -> Response:
    """POST /responses/input_tokens: how many tokens the request's prompt would take."""
    st = state(request)
    req = await parse_request(st, request, await read_json(request, st.max_body))
    count = await st.responder.count_tokens(req)
    return json_response({"object": "response.input_tokens", "input_tokens": count})


def _compact(dialect: Dialect) -> Callable[[Request], Awaitable[Response]]:
    async def compact_conversation(request: Request) -> Response:
        """POST /responses/compact: the conversation so far as one compaction item to continue from."""
        st = state(request)
        data = await read_json(request, st.max_body)
        if "input" not in data and "previous_response_id" not in data:
            raise InvalidRequest("Give 'input' or 'previous_response_id' to compact.", param="input")
        data = {**data, "input": data.get("input") or [], "store": False}
        req = await parse_request(st, request, data)
        result = await compact(st.responder, req)
        return json_response(
            {
                "id": result.id,
                "object": "response.compaction",
                "created_at": result.created_at,
                "output": [dialect.input_item(item, item_id) for item, item_id in result.output],
                "usage": usage_wire(result.usage),
            }
        )

    return compact_conversation


async def list_models(request: Request) -> Response:
    """GET /models."""
    st = state(request)
    st.keys.check(request)
    info = st.responder.engine.info
    model = {
        "id": info.name,
        "object": "model",
        "created": info.created,
        "owned_by": "vresponses",
        "max_model_len": info.max_model_len,
    }
    return json_response({"object": "list", "data": [model]})


async def health(request: Request) -> Response:
    """GET /health: 200 when the engine can serve, 503 when it is dead."""
    st = state(request)
    if not await st.responder.engine.healthy():
        raise Unavailable("The engine is not running.")
    return json_response({"status": "ok", **health_detail(st.responder.engine)})


async def metrics(request: Request) -> Response:
    """GET /metrics: Prometheus text format."""
    st = state(request)
    st.keys.check(request)
    observe(st)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request) -> Response:
    """GET /openapi.json: the API's OpenAPI document (a key is needed, as for every route but /health)."""
    state(request).keys.check(request)
    return json_response(document())


def api_routes(prefix: str, dialect: Dialect) -> list[BaseRoute]:
    """The Responses API under prefix, written in one dialect."""
    return [
        Route(f"{prefix}/responses", _create(dialect), methods=["POST"]),
        Route(f"{prefix}/responses/input_tokens", input_tokens, methods=["POST"]),
        Route(f"{prefix}/responses/compact", _compact(dialect), methods=["POST"]),
        Route(f"{prefix}/responses/{{response_id}}", _get(dialect), methods=["GET"]),
        Route(f"{prefix}/responses/{{response_id}}", delete_response, methods=["DELETE"]),
        Route(f"{prefix}/responses/{{response_id}}/input_items", _input_items(dialect), methods=["GET"]),
        Route(f"{prefix}/responses/{{response_id}}/cancel", _cancel(dialect), methods=["POST"]),
        Route(f"{prefix}/models", list_models, methods=["GET"]),
        *([WebSocketRoute(f"{prefix}/responses", websocket_session(dialect))] if dialect.websocket else []),
    ]


DIALECTS: dict[str, Dialect] = {"gradient": Gradient(), "openai": OpenAI()}


def routes(default: str = "gradient") -> list[BaseRoute]:
    """Every route: /v1 in the default dialect, each dialect also under its own prefix, health and metrics."""
    out = api_routes("/v1", DIALECTS[default])
    for name, dialect in DIALECTS.items():
        out += api_routes(f"/{name}/v1", dialect)
    return [
        *out,
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
