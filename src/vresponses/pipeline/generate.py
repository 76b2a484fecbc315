"""Prompt -> engine deltas -> parsers -> typed events; the only generation path, streamed or collected."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field

import anyio

from vresponses.engines.base import NO_PLACEMENT, Engine, Placement, SamplingOptions, TokenLogprob
from vresponses.parsers.base import Reasoning, ReasoningParser, Text, ToolCallChunk, ToolParser, ToolSpec
from vresponses.pipeline.events import Event, Finished, ReasoningDelta, TextDelta, ToolCallDelta, Usage
from vresponses.pipeline.tools import arguments_valid

log = logging.getLogger(__name__)


def new_call_id() -> str:
    """A fresh tool call id."""
    return "call_" + secrets.token_hex(12)


@dataclass
class Plan:
    """Everything one generation needs, decided once per request."""

    request_id: str
    prompt_token_ids: list[int]
    options: SamplingOptions
    tool_parser: ToolParser | None = None
    reasoning_parser: ReasoningParser | None = None
    # Set when tool_choice forces a call: calls are checked against these tools before they are emitted.
    forced: Mapping[str, ToolSpec] | None = None
    placement: Placement = NO_PLACEMENT


@dataclass
class _Calls:
    """Tool call fragments by index, with the ids given to them."""

    ids: dict[int, str] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    arguments: dict[int, list[str]] = field(default_factory=dict)


async def generate(engine: Engine, plan: Plan) -> AsyncGenerator[Event, None]:
    """Yield text, reasoning and tool-call events, then exactly one Finished; abort the engine if closed early."""
    prompt_tokens = len(plan.prompt_token_ids)
    if plan.options.max_tokens <= 0:
        yield Finished("length", Usage(prompt_tokens, 0, 0))
        return
    calls = _Calls()
    emitted_calls = 0
    output_tokens = reasoning_tokens = cached = 0
    finish = "stop"
    pending: list[TokenLogprob] = []
    in_reasoning = plan.reasoning_parser is not None and plan.reasoning_parser.prompt_opens_reasoning
    done = repeated = False
    replica: str | None = None
    try:
        async for delta in engine.generate(plan.request_id, plan.prompt_token_ids, plan.options, plan.placement):
            ntok = len(delta.token_ids)
            output_tokens += ntok
            cached = delta.cached_tokens or cached
            prompt_tokens = delta.prompt_tokens or prompt_tokens
            replica = delta.replica or replica
            if delta.logprobs:
                pending.extend(delta.logprobs)
            pieces = _parse(plan, delta.text, final=delta.finish_reason is not None)
            if pieces:
                in_reasoning = isinstance(pieces[-1], Reasoning)
                if any(isinstance(p, Reasoning) for p in pieces):
                    reasoning_tokens += ntok
            elif in_reasoning:
                reasoning_tokens += ntok
            for event in _events(plan, pieces, calls, pending):
                yield event
            if delta.finish_reason is not None:
                finish = delta.finish_reason
            elif plan.forced is not None and _repeats(calls):
                # Small models loop on a forced call when several are allowed; a repeat ends the turn.
                repeated = True
                break
        done = True
    finally:
        if not done or repeated:
            # Shielded: under anyio a cancelled scope would cancel this await too and leak the request.
            with anyio.CancelScope(shield=True):
                await engine.abort(plan.request_id)
    if plan.forced is not None:
        for event in _forced_calls(plan.forced, calls):
            emitted_calls += 1
            yield event
    else:
        emitted_calls = len(calls.ids)
    if emitted_calls and (finish == "stop" or (finish == "length" and plan.forced is not None)):
        # A forced turn that ran out of tokens after complete calls still delivers them (the cut one is dropped).
        finish = "tool_calls"
    yield Finished(finish, Usage(prompt_tokens, cached, output_tokens, reasoning_tokens), replica)


def _parse(plan: Plan, text: str, final: bool) -> list[Text | Reasoning | ToolCallChunk]:
    pieces: list[Text | Reasoning | ToolCallChunk] = []
    staged: list[Text | Reasoning] = []
    if plan.reasoning_parser is not None:
        staged = plan.reasoning_parser.feed(text) if text else []
        if final:
            staged += plan.reasoning_parser.finish()
    elif text:
        staged = [Text(text)]
    tool = plan.tool_parser
    for piece in staged:
        if isinstance(piece, Text) and tool is not None:
            pieces.extend(tool.feed(piece.text))
        else:
            pieces.append(piece)
    if final and tool is not None:
        pieces.extend(tool.finish())
    return pieces


def _events(
    plan: Plan, pieces: list[Text | Reasoning | ToolCallChunk], calls: _Calls, pending: list[TokenLogprob]
) -> list[Event]:
    events: list[Event] = []
    text_emitted = markup_seen = False
    for piece in pieces:
        if isinstance(piece, Text):
            # A forced turn is constrained to calls: text here is the remains of a call cut short.
            if piece.text and plan.forced is None:
                events.append(TextDelta(piece.text, tuple(pending)))
                pending.clear()
                text_emitted = True
            continue
        markup_seen = True
        if isinstance(piece, Reasoning):
            if piece.text:
                events.append(ReasoningDelta(piece.text))
        else:
            first = piece.index not in calls.ids
            if first:
                calls.ids[piece.index] = new_call_id()
                calls.names[piece.index] = piece.name or ""
                calls.arguments[piece.index] = []
            calls.arguments[piece.index].append(piece.arguments)
            if plan.forced is None:
                name = piece.name if first else None
                events.append(ToolCallDelta(piece.index, calls.ids[piece.index], name, piece.arguments))
    if markup_seen and not text_emitted:
        # These tokens were markup or reasoning, not content: their logprobs belong to no content delta.
        pending.clear()
    return events


def _signature(calls: _Calls, index: int) -> tuple[str, str] | None:
    try:
        value = json.loads("".join(calls.arguments[index]))
    except ValueError:
        return None
    return calls.names[index], json.dumps(value, sort_keys=True)


def _repeats(calls: _Calls) -> bool:
    """Whether the newest call is complete and identical to an earlier one."""
    if len(calls.ids) < 2:
        return False
    newest = max(calls.ids)
    signature = _signature(calls, newest)
    return signature is not None and any(_signature(calls, i) == signature for i in calls.ids if i != newest)


def _forced_calls(tools: Mapping[str, ToolSpec], calls: _Calls) -> list[ToolCallDelta]:
    # Constrained decoding makes calls valid; a call cut short by max_output_tokens is dropped, never returned,
    # and so is an exact repeat of an earlier call.
    out: list[ToolCallDelta] = []
    seen: set[tuple[str, str] | None] = set()
    for index in sorted(calls.ids):
        name = calls.names[index]
        arguments = "".join(calls.arguments[index])
        if not arguments_valid(tools.get(name), arguments):
            log.warning("dropping a forced call to %r whose arguments do not validate", name)
            continue
        signature = _signature(calls, index)
        if signature in seen:
            continue
        seen.add(signature)
        out.append(ToolCallDelta(len(out), calls.ids[index], name, arguments))
    return out
