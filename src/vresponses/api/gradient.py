"""The Gradient dialect: events -> `response.chunk` SSE lines ending `data: [DONE]`; responses -> the hybrid object."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from vresponses.api import errors
from vresponses.api.wire import encode, logprob_entries, tool_wire, usage_wire
from vresponses.engines.base import TokenLogprob
from vresponses.pipeline.events import (
    ArgumentsDelta,
    Event,
    Failed,
    Finished,
    ItemStarted,
    ReasoningDelta,
    Started,
    TextDelta,
    Usage,
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
from vresponses.pipeline.response import ResponseObject
from vresponses.pipeline.sealed import seal

DONE = b"data: [DONE]\n\n"


def chunk_usage_wire(u: Usage) -> dict[str, Any]:
    """Chat-style usage of the last stream chunk, as the client's chunk type defines it."""
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.total_tokens,
        "cache_read_input_tokens": u.cached_tokens,
        "cache_created_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }


def _finish(reason: str | None) -> str:
    # The wire knows stop | length | tool_calls | content_filter; an aborted run stopped, by request.
    return reason if reason in ("stop", "length", "tool_calls", "content_filter") else "stop"


def _tool_choice(r: ResponseObject) -> str:
    choice = r.tool_choice
    if isinstance(choice, str):
        return choice  # rows from before tool choices were stored whole
    return choice.wire() if r.tools else choice.mode


def _output_item(item: Item, include: tuple[str, ...] = ()) -> dict[str, Any] | None:
    if isinstance(item, Message):
        return {"type": "text", "text": item.content}
    if isinstance(item, OutputText):
        return {"type": "text", "text": item.text}
    if isinstance(item, Reasoning):
        return {
            "type": "reasoning",
            "id": item.id,
            "content": [{"type": "reasoning_text", "text": item.text}],
            "summary": [{"type": "summary_text", "text": s} for s in item.summary],
            "status": item.status or "completed",
        }
    if isinstance(item, FunctionCall):
        # This dialect's calls are chat-style: the call's id is its call_id, as in choices[0].message.tool_calls.
        return {
            "type": "function_call",
            "id": item.call_id,
            "call_id": item.call_id,
            "name": item.name,
            "arguments": item.arguments,
            "status": item.status or "completed",
        }
    if isinstance(item, Compaction):
        return {"type": "compaction", "id": item.id, "encrypted_content": seal(item.summary)}
    if isinstance(item, WebSearchCall):
        # An extension of this dialect: sources always, the text the model read when included.
        sources = [{"type": "url", "url": s.url, "title": s.title} for s in item.sources]
        out = {
            "type": "web_search_call",
            "id": item.id,
            "status": item.status,
            "action": {"type": "search", "query": item.query, "sources": sources},
        }
        if "web_search_call.results" in include:
            out["results"] = item.results
        return out
    return None


def _logprobs(r: ResponseObject) -> list[TokenLogprob] | None:
    if r.logprobs is not None:
        return r.logprobs  # rows from before messages carried their own
    found = [i.logprobs for i in r.output if isinstance(i, Message) and i.logprobs is not None]
    return [lp for lps in found for lp in lps] if found or r.top_logprobs is not None else None


def response_wire(r: ResponseObject) -> dict[str, Any]:
    """The hybrid object: `choices[0].message` and `output[]` from the same items, plus echoed settings."""
    text = r.text
    reasoning = "".join(i.text for i in r.output if isinstance(i, Reasoning))
    calls = [i for i in r.output if isinstance(i, FunctionCall)]
    message: dict[str, Any] = {"role": "assistant", "content": text if (text or not calls) else None}
    if calls:
        message["tool_calls"] = [
            {"id": c.call_id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in calls
        ]
    if reasoning:
        message["reasoning_content"] = reasoning
    choices = []
    if r.finish_reason is not None:
        lps = _logprobs(r)
        logprobs = {"content": logprob_entries(lps)} if lps is not None else None
        choices.append(
            {"index": 0, "finish_reason": _finish(r.finish_reason), "message": message, "logprobs": logprobs}
        )
    output = [wire for item in r.output if (wire := _output_item(item, r.include)) is not None]
    if calls and not text:
        output = [o for o in output if o["type"] != "text"]
    body: dict[str, Any] = {
        "id": r.id,
        "object": "response",
        "created": r.created,
        "model": r.model,
        "status": r.status,
        "background": r.background,
        "choices": choices,
        "output": output,
        "usage": usage_wire(r.usage) if r.usage else None,
        "instructions": r.instructions,
        "input_messages": None,
        "output_messages": None,
        "prompt": None,
        "max_output_tokens": r.max_output_tokens,
        "max_tool_calls": r.max_tool_calls,
        "metadata": r.metadata,
        "parallel_tool_calls": r.parallel_tool_calls,
        "previous_response_id": r.previous_response_id,
        "reasoning": reasoning or None,
        "service_tier": r.service_tier or "default",
        "store": r.store,
        "temperature": r.temperature,
        "text": text if r.finish_reason is not None else None,
        "tool_choice": _tool_choice(r),
        "tools": [tool_wire(t) for t in r.tools] + [{"type": t} for t in r.builtin_tools],
        "top_logprobs": r.top_logprobs,
        "top_p": r.top_p,
        "truncation": r.truncation,
        "user": r.user,
        "completed_at": r.completed_at,
    }
    if r.error:
        body["error"] = {"message": r.error, "type": "server_error", "code": r.error_code}
    return body


def input_item_wire(item: Item, item_id: str) -> dict[str, Any]:
    """An input item as /input_items lists it in this dialect."""
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
    if isinstance(item, FunctionCallOutput):
        return {"type": "function_call_output", "id": item_id, "call_id": item.call_id, "output": item.output}
    wire = _output_item(item)
    assert wire is not None
    return {**wire, "id": item_id}


class ChunkWriter:
    """Serializes one response's events to SSE lines; the per-chunk envelope is encoded once per request."""

    def __init__(self, response: ResponseObject, include_usage: bool, logprobs: bool) -> None:
        head = encode(
            {"id": response.id, "object": "response.chunk", "created": response.created, "model": response.model}
        )
        self._head = b"data: " + head[:-1] + b',"choices":[{"index":0,"delta":'
        self._tail = b',"finish_reason":null,"logprobs":null}],"usage":null}\n\n'
        self._head_bare = b"data: " + head[:-1]
        self.include_usage = include_usage
        self.logprobs = logprobs
        # Every fragment of a call repeats its index, id, type and name (typed clients require them).
        self._calls: dict[str, bytes] = {}

    def _delta(self, delta: bytes, logprobs: Iterable[TokenLogprob] = ()) -> bytes:
        if self.logprobs:
            lp = encode({"content": logprob_entries(logprobs)})
            return self._head + delta + b',"finish_reason":null,"logprobs":' + lp + b'}],"usage":null}\n\n'
        return self._head + delta + self._tail

    def event(self, event: Event) -> bytes:
        """The SSE lines for one event (several for the final one, none for item boundaries)."""
        if isinstance(event, TextDelta):
            return self._delta(b'{"content":' + encode(event.text) + b"}", event.logprobs)
        if isinstance(event, ReasoningDelta):
            return self._delta(b'{"reasoning_content":' + encode(event.text) + b"}")
        if isinstance(event, ArgumentsDelta):
            return self._delta(self._calls[event.item_id] + encode(event.text) + b"}}]}")
        if isinstance(event, ItemStarted):
            if event.kind != "function_call":
                return b""
            call = encode({"index": len(self._calls), "id": event.call_id, "type": "function"})
            self._calls[event.item_id] = (
                b'{"tool_calls":[' + call[:-1] + b',"function":{"name":' + encode(event.name) + b',"arguments":'
            )
            return self._delta(self._calls[event.item_id] + b'""}}]}')
        if isinstance(event, Started):
            return self._delta(b'{"role":"assistant","content":""}')
        if isinstance(event, Finished):
            return self._final(event.response)
        if isinstance(event, Failed):
            return b"data: " + errors.body(errors.translate(event.error)) + b"\n\n"
        return b""

    def _final(self, r: ResponseObject) -> bytes:
        out = (
            self._head
            + b'{},"finish_reason":'
            + encode(_finish(r.finish_reason))
            + b',"logprobs":null}],"usage":null}\n\n'
        )
        if self.include_usage and r.usage is not None:
            out += self._head_bare + b',"choices":[],"usage":' + encode(chunk_usage_wire(r.usage)) + b"}\n\n"
        return out + DONE


class Gradient:
    """The seed's dialect, as one object the routes select."""

    name = "gradient"
    websocket = False

    def frames(self, response: ResponseObject) -> Callable[[Event], list[str]]:
        """This dialect has no WebSocket mode."""
        raise NotImplementedError("the Gradient dialect has no WebSocket mode")

    def response(self, r: ResponseObject) -> dict[str, Any]:
        """The response body for create, retrieve and cancel."""
        return response_wire(r)

    def input_item(self, item: Item, item_id: str) -> dict[str, Any]:
        """One entry of /input_items."""
        return input_item_wire(item, item_id)

    async def stream(
        self, response: ResponseObject, events: AsyncIterator[Event], include_usage: bool, skip: int = 0
    ) -> AsyncIterator[bytes]:
        """The whole SSE body: the role chunk, one chunk per delta, the final chunk(s) and [DONE] (or an error).

        The first `skip` writes are left out (a replay that starts after them).
        """
        writer = ChunkWriter(response, include_usage, response.top_logprobs is not None)
        written = 0
        async for event in events:
            chunk = writer.event(event)
            if chunk:
                written += 1
                if written > skip:
                    yield chunk
