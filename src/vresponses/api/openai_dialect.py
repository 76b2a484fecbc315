"""OpenAI's dialect: the Responses object with typed output items, and its semantic streaming events.

Events are written as JSON once each; SSE frames them as `event: <type>` + `data:` lines, WebSocket mode sends
the same JSON as messages. Per-delta work is concatenating bytes encoded once per item.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from vresponses.api import errors
from vresponses.api.wire import encode, logprob_entries, tool_wire, usage_wire
from vresponses.errors import APIError
from vresponses.parsers.base import ToolSpec
from vresponses.pipeline.events import (
    ArgumentsDelta,
    Event,
    Failed,
    Finished,
    ItemDone,
    ItemStarted,
    ReasoningDelta,
    SearchUpdate,
    Started,
    Status,
    TextDelta,
)
from vresponses.pipeline.items import (
    Compaction,
    FunctionCall,
    FunctionCallOutput,
    Item,
    Message,
    OutputText,
    Reasoning,
    WebSearchCall,
)
from vresponses.pipeline.render import SEARCH_TOOL
from vresponses.pipeline.request import ToolChoice
from vresponses.pipeline.response import ResponseObject
from vresponses.pipeline.sealed import seal

ENCRYPTED_REASONING = "reasoning.encrypted_content"
SOURCES = "web_search_call.action.sources"
RESULTS = "web_search_call.results"
# The web_search_call statuses that have their own event (a failed search shows only in output_item.done).
SEARCH_EVENTS = frozenset({"in_progress", "searching", "completed"})
_TERMINAL = {
    Status.COMPLETED: "response.completed",
    Status.INCOMPLETE: "response.incomplete",
    Status.CANCELLED: "response.incomplete",
    Status.FAILED: "response.failed",
}


def _message(item: Message, item_id: str, with_logprobs: bool) -> dict[str, Any]:
    part: dict[str, Any] = {
        "type": "output_text",
        "text": item.content,
        "annotations": [
            {
                "type": "url_citation",
                "url": a.url,
                "title": a.title,
                "start_index": a.start_index,
                "end_index": a.end_index,
            }
            for a in item.annotations
        ],
    }
    if with_logprobs:
        part["logprobs"] = logprob_entries(item.logprobs or ())
    return {
        "type": "message",
        "id": item_id,
        "status": item.status or "completed",
        "role": item.role,
        "content": [part] if item.role == "assistant" else [{"type": "input_text", "text": item.content}],
    }


def _call(item: FunctionCall, item_id: str) -> dict[str, Any]:
    # A call to a freeform tool is written as the client declared the tool: a custom_tool_call with its text input.
    out: dict[str, Any] = {"type": "custom_tool_call" if item.custom else "function_call", "id": item_id}
    out["call_id"] = item.call_id
    if item.namespace:
        out["namespace"] = item.namespace  # clients route a namespaced function by namespace and name
    out["name"] = item.name
    if item.custom:
        out["input"] = item.input
    else:
        out["arguments"] = item.arguments
    out["status"] = item.status or "completed"
    return out


def tools_wire(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    """Function tools as the client declared them: freeform tools as `custom`, namespaced ones regrouped."""
    out: list[dict[str, Any]] = []
    spaces: dict[str, list[dict[str, Any]]] = {}
    for tool in tools:
        if tool.custom:
            # Offered to the model as free text: no grammar is enforced.
            wire = {"type": "custom", "name": tool.name, "description": tool.description, "format": {"type": "text"}}
        else:
            wire = tool_wire(tool) | {"strict": None}
        if tool.namespace is None:
            out.append(wire)
        elif tool.namespace in spaces:
            spaces[tool.namespace].append(wire)
        else:
            spaces[tool.namespace] = [wire]
            out.append({"type": "namespace", "name": tool.namespace, "tools": spaces[tool.namespace]})
    return out


def item_wire(item: Item, item_id: str | None = None, include: tuple[str, ...] = (), logprobs: bool = False) -> Any:
    """One item in this dialect (output items, and input items as /input_items lists them)."""
    if isinstance(item, Message):
        return _message(item, item.id or item_id or "", logprobs)
    if isinstance(item, OutputText):
        return _message(Message(role="assistant", content=item.text), item_id or "", False)
    if isinstance(item, Reasoning):
        out: dict[str, Any] = {
            "type": "reasoning",
            "id": item.id or item_id,
            "summary": [{"type": "summary_text", "text": s} for s in item.summary],
            "content": [{"type": "reasoning_text", "text": item.text}],
        }
        if ENCRYPTED_REASONING in include:
            out["encrypted_content"] = item.encrypted_content or seal(item.text)
        return out
    if isinstance(item, FunctionCall):
        return _call(item, item.id or item_id or item.call_id)
    if isinstance(item, FunctionCallOutput):
        return {
            "type": "custom_tool_call_output" if item.custom else "function_call_output",
            "id": item.id or item_id,
            "call_id": item.call_id,
            "output": item.output,
            "status": "completed",
        }
    if isinstance(item, WebSearchCall):
        return _web_search_call(item, include)
    assert isinstance(item, Compaction)
    return {"type": "compaction", "id": item.id, "encrypted_content": seal(item.summary)}


def _web_search_call(item: WebSearchCall, include: tuple[str, ...]) -> dict[str, Any]:
    # As OpenAI's: sources only when included; the text the model read (`results`) is this server's extension.
    action: dict[str, Any] = {"type": "search", "query": item.query}
    if SOURCES in include:
        action["sources"] = [{"type": "url", "url": s.url} for s in item.sources]
    out = {"type": "web_search_call", "id": item.id, "status": item.status, "action": action}
    if RESULTS in include:
        out["results"] = item.results
    return out


def _tool_choice(r: ResponseObject) -> Any:
    choice = r.tool_choice
    if isinstance(choice, str):  # rows from before tool choices were stored whole
        choice = ToolChoice(choice) if choice in ("none", "auto", "required") else ToolChoice("function", choice)
    if choice.mode == "function":
        return {"type": "function", "name": choice.name}
    if choice.mode == SEARCH_TOOL:
        return {"type": choice.name or SEARCH_TOOL}
    if choice.mode == "allowed_tools":
        return {
            "type": "allowed_tools",
            "mode": "required" if choice.require else "auto",
            "tools": [
                {"type": SEARCH_TOOL} if n == SEARCH_TOOL else {"type": "function", "name": n} for n in choice.allowed
            ],
        }
    return choice.mode


def _text(r: ResponseObject) -> dict[str, Any]:
    fmt = r.text_format
    out: dict[str, Any] = {"type": fmt.type}
    if fmt.type == "json_schema":
        out.update(name=fmt.name, schema=fmt.schema, strict=fmt.strict, description=fmt.description)
    text: dict[str, Any] = {"format": out}
    if r.verbosity:
        text["verbosity"] = r.verbosity
    return text


def _incomplete(r: ResponseObject) -> dict[str, str] | None:
    if r.status != Status.INCOMPLETE:
        return None
    return {"reason": "max_output_tokens" if r.finish_reason == "length" else "interrupted"}


def _error(r: ResponseObject) -> dict[str, str] | None:
    if r.status != Status.FAILED:
        return None
    return {"code": r.error_code or "server_error", "message": r.error or "The response failed."}


def response_wire(r: ResponseObject) -> dict[str, Any]:
    """The Responses object."""
    logprobs = r.top_logprobs is not None or "message.output_text.logprobs" in r.include
    return {
        "id": r.id,
        "object": "response",
        "created_at": r.created,
        "completed_at": r.completed_at if r.status.final else None,
        "status": r.status,
        "incomplete_details": _incomplete(r),
        "model": r.model,
        "previous_response_id": r.previous_response_id,
        "instructions": r.instructions,
        "output": [item_wire(i, f"msg_{r.id[5:21]}_{n}", r.include, logprobs) for n, i in enumerate(r.output)],
        "error": _error(r),
        "tools": tools_wire(r.tools) + [{"type": t} for t in r.builtin_tools],
        "tool_choice": _tool_choice(r),
        "truncation": r.truncation,
        "parallel_tool_calls": r.parallel_tool_calls,
        "text": _text(r),
        "top_p": 1.0 if r.top_p is None else r.top_p,
        "presence_penalty": r.presence_penalty or 0.0,
        "frequency_penalty": r.frequency_penalty or 0.0,
        "top_logprobs": r.top_logprobs or 0,
        "temperature": 1.0 if r.temperature is None else r.temperature,
        "reasoning": {"effort": r.reasoning.effort, "summary": r.reasoning.summary},
        "usage": usage_wire(r.usage) if r.usage is not None else None,
        "max_output_tokens": r.max_output_tokens,
        "max_tool_calls": r.max_tool_calls,
        "store": r.store,
        "background": r.background,
        "service_tier": r.service_tier or "default",
        "metadata": r.metadata or {},
        "safety_identifier": r.safety_identifier,
        "prompt_cache_key": r.prompt_cache_key,
        "user": r.user,
    }


def error_payload(exc: APIError) -> dict[str, Any]:
    """The error object of an `error` event."""
    return {"type": exc.type, "code": exc.code or exc.type, "message": exc.message, "param": exc.param}


class EventWriter:
    """One response's events as (type, JSON bytes) pairs with strictly increasing sequence numbers."""

    def __init__(self, response: ResponseObject) -> None:
        self.response = response
        self._seq = 0
        self._logprobs = response.top_logprobs is not None or "message.output_text.logprobs" in response.include
        self._prefix: dict[str, bytes] = {}
        # Freeform tool calls: their argument deltas are the JSON wrapping of the input, not the input.
        self._custom: set[str] = set()

    @property
    def written(self) -> int:
        """How many events have been written (the next one's sequence number)."""
        return self._seq

    def _out(self, kind: str, body: dict[str, Any]) -> tuple[str, bytes]:
        payload = encode({"type": kind, "sequence_number": self._seq, **body})
        self._seq += 1
        return kind, payload

    def _delta(self, kind: str, item_id: str, tail: bytes) -> tuple[str, bytes]:
        # Hot path: the per-item prefix is encoded once; a delta is a few concatenations.
        key = kind + item_id
        prefix = self._prefix.get(key)
        if prefix is None:
            prefix = self._prefix[key] = b'{"type":"' + kind.encode() + b'","item_id":' + encode(item_id)
        seq = str(self._seq).encode()
        self._seq += 1
        return kind, prefix + b',"sequence_number":' + seq + tail

    def events(self, event: Event) -> Iterator[tuple[str, bytes]]:
        """The wire events for one pipeline event."""
        if isinstance(event, TextDelta):
            lp = encode(logprob_entries(event.logprobs)) if self._logprobs else b"[]"
            tail = b',"output_index":%d,"content_index":0,"delta":' % event.output_index
            yield self._delta(
                "response.output_text.delta", event.item_id, tail + encode(event.text) + b',"logprobs":' + lp + b"}"
            )
        elif isinstance(event, ReasoningDelta):
            tail = b',"output_index":%d,"content_index":0,"delta":' % event.output_index
            yield self._delta("response.reasoning_text.delta", event.item_id, tail + encode(event.text) + b"}")
        elif isinstance(event, ArgumentsDelta):
            if event.item_id in self._custom:
                return
            tail = b',"output_index":%d,"delta":' % event.output_index
            yield self._delta("response.function_call_arguments.delta", event.item_id, tail + encode(event.text) + b"}")
        elif isinstance(event, ItemStarted):
            yield from self._started(event)
        elif isinstance(event, ItemDone):
            yield from self._done(event)
        elif isinstance(event, SearchUpdate):
            if event.status in SEARCH_EVENTS:
                yield self._out(
                    f"response.web_search_call.{event.status}",
                    {"item_id": event.item_id, "output_index": event.output_index},
                )
        elif isinstance(event, Started):
            body = {"response": response_wire(event.response)}
            yield self._out("response.created", body)
            yield self._out("response.in_progress", body)
        elif isinstance(event, Finished):
            r = event.response
            yield self._out(_TERMINAL.get(r.status, "response.completed"), {"response": response_wire(r)})
        elif isinstance(event, Failed):
            yield self._out("response.failed", {"response": response_wire(event.response)})

    def _started(self, e: ItemStarted) -> Iterator[tuple[str, bytes]]:
        at = {"output_index": e.output_index}
        item: dict[str, Any]
        if e.kind == "message":
            item = {"type": "message", "id": e.item_id, "status": "in_progress", "role": "assistant", "content": []}
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            yield self._out("response.output_item.added", {**at, "item": item})
            yield self._out(
                "response.content_part.added", {"item_id": e.item_id, **at, "content_index": 0, "part": part}
            )
        elif e.kind == "reasoning":
            item = {"type": "reasoning", "id": e.item_id, "summary": [], "content": []}
            part = {"type": "reasoning_text", "text": ""}
            yield self._out("response.output_item.added", {**at, "item": item})
            yield self._out(
                "response.content_part.added", {"item_id": e.item_id, **at, "content_index": 0, "part": part}
            )
        elif e.kind == "function_call":
            call = FunctionCall(e.call_id or "", e.name or "", "", None, "in_progress", e.custom, e.namespace)
            item = _call(call, e.item_id)
            if e.custom:
                self._custom.add(e.item_id)
            yield self._out("response.output_item.added", {**at, "item": item})
        else:
            action: dict[str, Any] = {"type": "search", "query": e.query or ""}
            if SOURCES in self.response.include:
                action["sources"] = []
            item = {"type": "web_search_call", "id": e.item_id, "status": "in_progress", "action": action}
            yield self._out("response.output_item.added", {**at, "item": item})

    def _done(self, e: ItemDone) -> Iterator[tuple[str, bytes]]:
        item = e.item
        wire = item_wire(item, None, self.response.include, self._logprobs)
        at = {"item_id": wire["id"], "output_index": e.output_index}
        if isinstance(item, Message):
            part = wire["content"][0]
            for n, annotation in enumerate(part.get("annotations", ())):
                yield self._out(
                    "response.output_text.annotation.added",
                    {**at, "content_index": 0, "annotation_index": n, "annotation": annotation},
                )
            done: dict[str, Any] = {**at, "content_index": 0, "text": item.content}
            if self._logprobs:
                done["logprobs"] = part.get("logprobs", [])
            yield self._out("response.output_text.done", done)
            yield self._out("response.content_part.done", {**at, "content_index": 0, "part": part})
        elif isinstance(item, Reasoning):
            part = {"type": "reasoning_text", "text": item.text}
            yield self._out("response.reasoning_text.done", {**at, "content_index": 0, "text": item.text})
            yield self._out("response.content_part.done", {**at, "content_index": 0, "part": part})
        elif isinstance(item, FunctionCall) and item.custom:
            # The input is known whole only once the call is: it streams as one delta.
            text = wire["input"]
            yield self._out("response.custom_tool_call_input.delta", {**at, "delta": text})
            yield self._out("response.custom_tool_call_input.done", {**at, "input": text})
        elif isinstance(item, FunctionCall):
            yield self._out(
                "response.function_call_arguments.done", {**at, "name": item.name, "arguments": item.arguments}
            )
        yield self._out("response.output_item.done", {"output_index": e.output_index, "item": wire})

    def error(self, exc: APIError) -> tuple[str, bytes]:
        """An `error` event (a failure outside any response)."""
        return self._out("error", {"error": error_payload(exc)})


def sse(kind: str, payload: bytes) -> bytes:
    """One server-sent event whose `event:` line equals the payload's type."""
    return b"event: " + kind.encode() + b"\ndata: " + payload + b"\n\n"


class OpenAI:
    """OpenAI's Responses dialect, as one object the routes select."""

    name = "openai"
    websocket = True

    def frames(self, response: ResponseObject) -> Callable[[Event], list[str]]:
        """One response's events as WebSocket messages: the same JSON as the SSE data lines."""
        writer = EventWriter(response)
        return lambda event: [payload.decode() for _, payload in writer.events(event)]

    def response(self, r: ResponseObject) -> dict[str, Any]:
        """The response body for create, retrieve and cancel."""
        return response_wire(r)

    def input_item(self, item: Item, item_id: str) -> dict[str, Any]:
        """One entry of /input_items."""
        wire: dict[str, Any] = item_wire(item, item_id)
        if isinstance(item, Message):
            wire["id"] = item.id or item_id
        return wire

    async def stream(
        self, response: ResponseObject, events: AsyncIterator[Event], include_usage: bool, skip: int = 0
    ) -> AsyncIterator[bytes]:
        """The SSE body: response.created … one terminal event (completed, incomplete or failed).

        The first `skip` events (sequence numbers below it) are left out: a replay that starts after them.
        """
        writer = EventWriter(response)
        try:
            async for event in events:
                for kind, payload in writer.events(event):
                    if writer.written > skip:
                        yield sse(kind, payload)
        except Exception as exc:  # a bug below the pipeline's own handling: still end with an event
            yield sse(*writer.error(errors.translate(exc)))
