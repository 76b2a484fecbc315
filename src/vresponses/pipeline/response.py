"""The response as the pipeline knows it (stored as is), and collect(): folding events into it."""

from __future__ import annotations

import secrets

import msgspec

from vresponses.engines.base import TokenLogprob
from vresponses.parsers.base import ToolSpec
from vresponses.pipeline.events import Event, Finished, ReasoningDelta, TextDelta, ToolCallDelta, Usage
from vresponses.pipeline.items import FunctionCall, Item, OutputText, Reasoning


class ResponseObject(msgspec.Struct, kw_only=True):
    """One response: identity, the settings it ran with, and (once finished) its output and usage."""

    id: str
    created: int
    model: str
    status: str = "in_progress"
    instructions: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    tool_choice: str = "none"
    tools: list[ToolSpec] = []
    parallel_tool_calls: bool = True
    top_logprobs: int | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    background: bool = False
    store: bool = True
    previous_response_id: str | None = None
    output: list[Item] = []
    finish_reason: str | None = None
    usage: Usage | None = None
    logprobs: list[TokenLogprob] | None = None
    error: str | None = None
    completed_at: int | None = None
    # The replica that served this turn (remote engines): the next turn of the conversation is routed back to it.
    replica: str | None = None

    @property
    def text(self) -> str:
        """The assistant's content: all output text concatenated."""
        return "".join(i.text for i in self.output if isinstance(i, OutputText))


def new_response_id() -> str:
    """A fresh response id."""
    return "resp_" + secrets.token_hex(16)


class Collector:
    """Folds events into a ResponseObject; the one assembly used for non-streaming, storing and background."""

    def __init__(self, response: ResponseObject) -> None:
        self.response = response
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._calls: dict[int, list[str]] = {}
        self._call_meta: dict[int, tuple[str, str]] = {}
        self._logprobs: list[TokenLogprob] | None = [] if response.top_logprobs is not None else None
        self.finished: Finished | None = None

    def add(self, event: Event) -> None:
        """Take one event."""
        if isinstance(event, TextDelta):
            self._text.append(event.text)
            if self._logprobs is not None:
                self._logprobs.extend(event.logprobs)
        elif isinstance(event, ReasoningDelta):
            self._reasoning.append(event.text)
        elif isinstance(event, ToolCallDelta):
            if event.index not in self._calls:
                self._calls[event.index] = []
                self._call_meta[event.index] = (event.call_id, event.name or "")
            self._calls[event.index].append(event.arguments)
        else:
            self.finished = event

    def result(self, status: str | None = None) -> ResponseObject:
        """The response with output, finish reason and usage filled in."""
        output: list[Item] = []
        if self._reasoning:
            output.append(Reasoning(id="rs_" + secrets.token_hex(12), text="".join(self._reasoning)))
        if self._text or not self._calls:
            output.append(OutputText(text="".join(self._text)))
        for index in sorted(self._calls):
            call_id, name = self._call_meta[index]
            arguments = "".join(self._calls[index])
            output.append(FunctionCall(call_id=call_id, id=call_id, name=name, arguments=arguments, status="completed"))
        response = self.response
        response.output = output
        response.logprobs = self._logprobs
        if self.finished is not None:
            response.finish_reason = self.finished.finish_reason
            response.usage = self.finished.usage
            response.replica = self.finished.replica
        response.status = status or _status(response.finish_reason)
        return response


def _status(finish_reason: str | None) -> str:
    if finish_reason in ("stop", "tool_calls"):
        return "completed"
    if finish_reason == "abort":
        return "cancelled"
    return "incomplete"


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(ResponseObject)


def encode_response(response: ResponseObject) -> bytes:
    """Serialize for the store."""
    return _ENCODER.encode(response)


def decode_response(data: bytes) -> ResponseObject:
    """Read what encode_response wrote."""
    return _DECODER.decode(data)


class _Replica(msgspec.Struct):
    replica: str | None = None


_REPLICA = msgspec.json.Decoder(_Replica)


def replica_of(data: bytes) -> str | None:
    """The replica a stored response was generated on, read without decoding the rest of it."""
    return _REPLICA.decode(data).replica
