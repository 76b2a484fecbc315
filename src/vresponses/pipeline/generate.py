"""Prompt -> engine deltas -> parsers -> item events; the only generation path, streamed or collected."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field

import anyio

from vresponses.engines.base import NO_PLACEMENT, Engine, Placement, SamplingOptions, TokenLogprob
from vresponses.parsers.base import Reasoning, ReasoningParser, Text, ToolCallChunk, ToolParser, ToolSpec
from vresponses.pipeline.events import ItemEvent, Usage
from vresponses.pipeline.output import OutputBuilder
from vresponses.pipeline.tools import arguments_valid

log = logging.getLogger(__name__)


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
    # False: the turn ends at the first complete call (the model may not make several).
    parallel_tool_calls: bool = True
    # Tools the server runs itself (web search): their calls are collected for the caller, never emitted as items.
    server_tools: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Stopped:
    """Generation's last word: why it stopped, what it cost, and where it ran."""

    finish_reason: str
    usage: Usage
    replica: str | None = None
    # Calls to the plan's server tools, as (name, arguments), in the order the model made them.
    server_calls: tuple[tuple[str, str], ...] = ()


@dataclass
class _Calls:
    """Call fragments by the parser's index (forced turns validate them before anything is emitted)."""

    names: dict[int, str] = field(default_factory=dict)
    arguments: dict[int, list[str]] = field(default_factory=dict)

    def add(self, piece: ToolCallChunk) -> None:
        if piece.index not in self.names:
            self.names[piece.index] = piece.name or ""
            self.arguments[piece.index] = []
        self.arguments[piece.index].append(piece.arguments)


async def generate(engine: Engine, plan: Plan, output: OutputBuilder) -> AsyncGenerator[ItemEvent | Stopped, None]:
    """Yield item events, then exactly one Stopped; abort the engine request if closed early."""
    prompt_tokens = len(plan.prompt_token_ids)
    if plan.options.max_tokens <= 0:
        yield Stopped("length", Usage(prompt_tokens, 0, 0))
        return
    calls = _Calls()
    output_tokens = reasoning_tokens = cached = 0
    finish = "stop"
    replica: str | None = None
    pending: list[TokenLogprob] = []
    in_reasoning = plan.reasoning_parser is not None and plan.reasoning_parser.prompt_opens_reasoning
    done = cut = False
    try:
        deltas = engine.generate(plan.request_id, plan.prompt_token_ids, plan.options, plan.placement)
        async for delta in deltas:
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
            events, cut = _events(plan, pieces, calls, pending, output)
            for event in events:
                yield event
            if delta.finish_reason is not None:
                finish = delta.finish_reason
            elif cut or (plan.forced is not None and _repeats(calls)):
                # A second call where one is allowed, or a forced call repeated (small models loop): end the turn.
                cut = True
                break
        done = True
    finally:
        if not done or cut:
            # Shielded: under anyio a cancelled scope would cancel this await too and leak the request.
            with anyio.CancelScope(shield=True):
                await engine.abort(plan.request_id)
    if plan.forced is not None:
        # Validating against client schemas is bounded per call, but can add up: off the event loop.
        server_calls = []
        for name, arguments in await anyio.to_thread.run_sync(_forced_calls, plan.forced, calls):
            if name in plan.server_tools:
                server_calls.append((name, arguments))
            else:
                for event in output.whole_call(name, arguments):
                    yield event
    else:
        server_calls = _server_calls(plan.server_tools, calls)
    emitted = output.calls > 0
    if emitted and (finish == "stop" or cut or (finish == "length" and plan.forced is not None)):
        # A forced turn that ran out of tokens after complete calls still delivers them (the cut one is dropped).
        finish = "tool_calls"
    for event in output.close("completed" if finish in ("stop", "tool_calls") else "incomplete"):
        yield event
    usage = Usage(prompt_tokens, cached, output_tokens, reasoning_tokens)
    yield Stopped(finish, usage, replica, tuple(server_calls))


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
    plan: Plan,
    pieces: list[Text | Reasoning | ToolCallChunk],
    calls: _Calls,
    pending: list[TokenLogprob],
    output: OutputBuilder,
) -> tuple[list[ItemEvent], bool]:
    """The item events for these pieces, and whether the turn must end here (a call beyond the one allowed)."""
    events: list[ItemEvent] = []
    text_emitted = markup_seen = False
    for piece in pieces:
        if isinstance(piece, Text):
            # A forced turn is constrained to calls: text here is the remains of a call cut short.
            if piece.text and plan.forced is None:
                events.extend(output.text(piece.text, tuple(pending)))
                pending.clear()
                text_emitted = True
            continue
        markup_seen = True
        if isinstance(piece, Reasoning):
            if piece.text:
                events.extend(output.reasoning(piece.text))
            continue
        if piece.index not in calls.names and calls.names and not plan.parallel_tool_calls:
            return events, True
        calls.add(piece)
        if plan.forced is None and calls.names[piece.index] not in plan.server_tools:
            events.extend(output.call(piece.index, piece.name, piece.arguments))
    if markup_seen and not text_emitted:
        # These tokens were markup or reasoning, not content: their logprobs belong to no content delta.
        pending.clear()
    return events, False


def _signature(calls: _Calls, index: int) -> tuple[str, str] | None:
    try:
        value = json.loads("".join(calls.arguments[index]))
    except ValueError:
        return None
    return calls.names[index], json.dumps(value, sort_keys=True)


def _repeats(calls: _Calls) -> bool:
    """Whether the newest call is complete and identical to an earlier one."""
    if len(calls.names) < 2:
        return False
    newest = max(calls.names)
    signature = _signature(calls, newest)
    return signature is not None and any(_signature(calls, i) == signature for i in calls.names if i != newest)


def _server_calls(server_tools: frozenset[str], calls: _Calls) -> list[tuple[str, str]]:
    return [(name, "".join(calls.arguments[i])) for i, name in sorted(calls.names.items()) if name in server_tools]


def _forced_calls(tools: Mapping[str, ToolSpec], calls: _Calls) -> list[tuple[str, str]]:
    """The forced calls to emit, as (name, arguments): only those that validate, and no exact repeats."""
    # Constrained decoding makes calls valid; a call cut short by max_output_tokens is dropped, never returned,
    # and so is an exact repeat of an earlier call.
    valid: list[tuple[str, str]] = []
    seen: set[tuple[str, str] | None] = set()
    for index in sorted(calls.names):
        name = calls.names[index]
        arguments = "".join(calls.arguments[index])
        if not arguments_valid(tools.get(name), arguments):
            log.warning("dropping a forced call to %r whose arguments do not validate", name)
            continue
        signature = _signature(calls, index)
        if signature in seen:
            continue
        seen.add(signature)
        valid.append((name, arguments))
    return valid
