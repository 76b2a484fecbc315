"""The Gradient dialect: events -> `response.chunk` SSE lines, and a ResponseObject -> the hybrid response."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import msgspec

from vresponses.api import errors
from vresponses.engines.base import TokenLogprob
from vresponses.errors import APIError
from vresponses.pipeline.events import Event, Finished, ReasoningDelta, TextDelta, ToolCallDelta, Usage
from vresponses.pipeline.items import FunctionCall, OutputText, Reasoning
from vresponses.pipeline.response import ResponseObject

_json = msgspec.json.Encoder()
DONE = b"data: [DONE]\n\n"


def logprob_entries(logprobs: Iterable[TokenLogprob]) -> list[dict[str, Any]]:
    """Token logprobs in the wire shape."""
    return [
        {
            "token": lp.token,
            "bytes": list(lp.token.encode()),
            "logprob": lp.logprob,
            "top_logprobs": [{"token": t.token, "bytes": list(t.token.encode()), "logprob": t.logprob} for t in lp.top],
        }
        for lp in logprobs
    ]


def usage_wire(usage: Usage | None) -> dict[str, Any]:
    """Responses-style usage of a finished response."""
    u = usage or Usage(0, 0, 0)
    return {
        "input_tokens": u.input_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens, "tool_output_tokens": 0},
        "total_tokens": u.total_tokens,
    }


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
        logprobs = {"content": logprob_entries(r.logprobs)} if r.logprobs is not None else None
        choices.append(
            {"index": 0, "finish_reason": _finish(r.finish_reason), "message": message, "logprobs": logprobs}
        )
    output: list[dict[str, Any]] = []
    for item in r.output:
        if isinstance(item, Reasoning):
            output.append(
                {
                    "type": "reasoning",
                    "id": item.id,
                    "content": [{"type": "reasoning_text", "text": item.text}],
                    "summary": [],
                    "status": "completed",
                }
            )
        elif isinstance(item, OutputText):
            if item.text or not calls:
                output.append({"type": "text", "text": item.text})
        elif isinstance(item, FunctionCall):
            output.append(
                {
                    "type": "function_call",
                    "id": item.call_id,
                    "call_id": item.call_id,
                    "name": item.name,
                    "arguments": item.arguments,
                    "status": item.status or "completed",
                }
            )
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
        "max_tool_calls": None,
        "metadata": r.metadata,
        "parallel_tool_calls": r.parallel_tool_calls,
        "previous_response_id": r.previous_response_id,
        "reasoning": reasoning or None,
        "service_tier": "default",
        "store": r.store,
        "temperature": r.temperature,
        "text": text if r.finish_reason is not None else None,
        "tool_choice": r.tool_choice,
        "tools": [_tool(t.name, t.description, t.parameters) for t in r.tools],
        "top_logprobs": r.top_logprobs,
        "top_p": r.top_p,
        "truncation": "disabled",
        "user": r.user,
        "completed_at": r.completed_at,
    }
    if r.error:
        body["error"] = {"message": f"generation failed: {r.error}", "type": "server_error", "code": None}
    return body


def _tool(name: str, description: str | None, parameters: Any) -> dict[str, Any]:
    return {"type": "function", "name": name, "description": description, "parameters": dict(parameters)}


def _finish(reason: str) -> str:
    # The wire knows stop | length | tool_calls | content_filter; an aborted run stopped, by request.
    return reason if reason in ("stop", "length", "tool_calls", "content_filter") else "stop"


def encode(obj: Any) -> bytes:
    """JSON bytes."""
    return _json.encode(obj)


def error_event(exc: APIError) -> bytes:
    """An error after the stream started, as the client expects it: a data line holding `error`."""
    return b"data: " + errors.body(exc) + b"\n\n"


class ChunkWriter:
    """Serializes one response's events to SSE lines; the per-chunk envelope is encoded once per request."""

    def __init__(self, response: ResponseObject, include_usage: bool, logprobs: bool) -> None:
        head = _json.encode(
            {
                "id": response.id,
                "object": "response.chunk",
                "created": response.created,
                "model": response.model,
            }
        )
        self._head = b"data: " + head[:-1] + b',"choices":[{"index":0,"delta":'
        self._tail = b',"finish_reason":null,"logprobs":null}],"usage":null}\n\n'
        self._head_bare = b"data: " + head[:-1]
        self.include_usage = include_usage
        self.logprobs = logprobs

    def _delta(self, delta: bytes, logprobs: tuple[TokenLogprob, ...] = ()) -> bytes:
        if self.logprobs:
            lp = _json.encode({"content": logprob_entries(logprobs)})
            return self._head + delta + b',"finish_reason":null,"logprobs":' + lp + b'}],"usage":null}\n\n'
        return self._head + delta + self._tail

    def first(self) -> bytes:
        """The opening chunk, carrying the role."""
        return self._delta(b'{"role":"assistant","content":""}')

    def event(self, event: Event) -> bytes:
        """The SSE lines for one event (several for the final event)."""
        if isinstance(event, TextDelta):
            return self._delta(b'{"content":' + _json.encode(event.text) + b"}", event.logprobs)
        if isinstance(event, ReasoningDelta):
            return self._delta(b'{"reasoning_content":' + _json.encode(event.text) + b"}")
        if isinstance(event, ToolCallDelta):
            function: dict[str, Any] = {"arguments": event.arguments}
            call: dict[str, Any] = {"index": event.index, "function": function}
            if event.name is not None:
                call.update(id=event.call_id, type="function")
                function["name"] = event.name
            return self._delta(_json.encode({"tool_calls": [call]}))
        return self._final(event)

    def _final(self, event: Finished) -> bytes:
        out = (
            self._head
            + b'{},"finish_reason":'
            + _json.encode(_finish(event.finish_reason))
            + b',"logprobs":null}],"usage":null}\n\n'
        )
        if self.include_usage:
            out += self._head_bare + b',"choices":[],"usage":' + _json.encode(chunk_usage_wire(event.usage)) + b"}\n\n"
        return out


async def sse(writer: ChunkWriter, events: AsyncIterator[Event]) -> AsyncIterator[bytes]:
    """The whole stream: role chunk, one chunk per event, the final chunk(s), then [DONE]; errors as a data line."""
    yield writer.first()
    try:
        async for event in events:
            yield writer.event(event)
    except Exception as exc:
        yield error_event(errors.translate(exc))
        return
    yield DONE
