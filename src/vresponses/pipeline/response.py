"""The response as the pipeline knows it: one dialect-free value, stored as is, rendered by either dialect.

Rows written before messages had ids (output `text` items, response-level logprobs, a plain-string tool choice)
still decode: every field added since has a default.
"""

from __future__ import annotations

import secrets
import time

import msgspec

from vresponses.engines.base import SamplingOptions, TokenLogprob
from vresponses.parsers.base import ToolSpec
from vresponses.pipeline.events import Status, Usage, status_of
from vresponses.pipeline.items import Item, Message, OutputText
from vresponses.pipeline.request import ReasoningOptions, ResponseRequest, TextFormat, ToolChoice


class ResponseObject(msgspec.Struct, kw_only=True, frozen=True):
    """One response: identity, the settings it ran with, and (once finished) its output and usage."""

    id: str
    created: int
    model: str
    status: Status = Status.IN_PROGRESS
    instructions: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    max_output_tokens: int | None = None
    tool_choice: str | ToolChoice = "none"
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
    # Rows written before messages carried their own logprobs keep them here.
    logprobs: list[TokenLogprob] | None = None
    error: str | None = None
    error_code: str | None = None
    completed_at: int | None = None
    text_format: TextFormat = TextFormat()
    verbosity: str | None = None
    reasoning: ReasoningOptions = ReasoningOptions()
    truncation: str = "disabled"
    max_tool_calls: int | None = None
    include: tuple[str, ...] = ()
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    service_tier: str | None = None
    builtin_tools: tuple[str, ...] = ()
    # The replica that generated it, for engines that route between several (stored, never shown).
    replica: str | None = None

    @property
    def text(self) -> str:
        """The assistant's content: the text of every output message, concatenated."""
        return "".join(
            i.content if isinstance(i, Message) else i.text for i in self.output if isinstance(i, Message | OutputText)
        )

    def finished(
        self, output: list[Item], finish_reason: str | None, usage: Usage | None, status: Status | None = None
    ) -> ResponseObject:
        """This response with its output, usage and a final status (derived from finish_reason unless given)."""
        return msgspec.structs.replace(
            self,
            output=output,
            finish_reason=finish_reason,
            usage=usage,
            status=status or status_of(finish_reason),
            completed_at=int(time.time()),
        )

    def failed(self, output: list[Item], message: str, code: str | None = None) -> ResponseObject:
        """This response marked failed, with what was generated before the failure."""
        return msgspec.structs.replace(
            self, output=output, status=Status.FAILED, error=message, error_code=code, completed_at=int(time.time())
        )

    def with_status(self, status: Status) -> ResponseObject:
        """This response with another status (the stored column is authoritative, e.g. after a lease expired)."""
        return self if status == self.status else msgspec.structs.replace(self, status=status)


def new_response(response_id: str, req: ResponseRequest, model: str, options: SamplingOptions) -> ResponseObject:
    """The response as created for req: the settings it runs with (as used), queued or in progress, no output."""
    return ResponseObject(
        id=response_id,
        created=int(time.time()),
        model=model,
        status=Status.QUEUED if req.background else Status.IN_PROGRESS,
        instructions=req.instructions,
        temperature=options.temperature,
        top_p=options.top_p,
        presence_penalty=options.presence_penalty,
        frequency_penalty=options.frequency_penalty,
        max_output_tokens=options.max_tokens,
        tool_choice=req.tool_choice,
        tools=list(req.tools),
        parallel_tool_calls=req.parallel_tool_calls,
        top_logprobs=req.top_logprobs,
        user=req.user,
        metadata=req.metadata,
        background=req.background,
        store=req.store,
        previous_response_id=req.previous_response_id,
        text_format=req.text,
        verbosity=req.verbosity,
        reasoning=req.reasoning,
        truncation=req.truncation,
        max_tool_calls=req.max_tool_calls,
        include=req.include,
        prompt_cache_key=req.prompt_cache_key,
        safety_identifier=req.safety_identifier,
        service_tier=req.service_tier,
        builtin_tools=req.builtin_tools,
    )


def new_response_id() -> str:
    """A fresh response id."""
    return "resp_" + secrets.token_hex(16)


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(ResponseObject)


def encode_response(response: ResponseObject) -> bytes:
    """Serialize for the store."""
    return _ENCODER.encode(response)


def decode_response(data: bytes) -> ResponseObject:
    """Read what encode_response wrote (also rows from before items had ids)."""
    return _DECODER.decode(data)


class _Replica(msgspec.Struct):
    replica: str | None = None


_REPLICA = msgspec.json.Decoder(_Replica)


def replica_of(data: bytes) -> str | None:
    """The replica a stored response was generated on, read without decoding the rest of it."""
    return _REPLICA.decode(data).replica
