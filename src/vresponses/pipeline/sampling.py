"""A request's sampling options: its own values, else the model's defaults; the output constraint it needs."""

from __future__ import annotations

from collections.abc import Sequence

from vresponses.engines.base import Constraint, ModelInfo, SamplingOptions
from vresponses.parsers.base import ToolParser, ToolSpec
from vresponses.pipeline.request import ResponseRequest
from vresponses.pipeline.tools import bounded, constraint, output_schema

# Values the API's own defaults give when neither the request nor the model sets them.
NEUTRAL = {"temperature": 1.0, "top_p": 1.0}
LOGPROBS_INCLUDE = "message.output_text.logprobs"


def sampling_options(
    req: ResponseRequest,
    info: ModelInfo,
    room: int,
    forced: Sequence[ToolSpec],
    parser: type[ToolParser],
    tools_offered: bool,
) -> SamplingOptions:
    """Everything the engine samples with; `room` is what the context leaves for output."""
    defaults = {**NEUTRAL, **info.sampling_defaults}

    def pick(name: str, value: float | None) -> float:
        return float(value) if value is not None else float(defaults.get(name, 0.0))

    temperature, top_p = pick("temperature", req.temperature), pick("top_p", req.top_p)
    if req.top_p == 0:
        # vLLM rejects top_p=0; the API allows it and it can only mean the single most likely token.
        temperature, top_p = 0.0, 1.0
    logprobs = req.top_logprobs
    if logprobs is None and LOGPROBS_INCLUDE in req.include:
        logprobs = 0
    wanted = req.max_output_tokens if req.max_output_tokens is not None else defaults.get("max_tokens")
    return SamplingOptions(
        max_tokens=room if wanted is None else min(int(wanted), room),
        temperature=temperature,
        top_p=top_p,
        top_k=int(defaults.get("top_k", 0)),
        min_p=float(defaults.get("min_p", 0.0)),
        presence_penalty=pick("presence_penalty", req.presence_penalty),
        frequency_penalty=pick("frequency_penalty", req.frequency_penalty),
        repetition_penalty=float(defaults.get("repetition_penalty", 1.0)),
        stop=req.stop,
        logprobs=logprobs,
        skip_special_tokens=not (tools_offered and parser.keeps_special_tokens),
        constraint=_constraint(req, forced, parser),
    )


def _constraint(req: ResponseRequest, forced: Sequence[ToolSpec], parser: type[ToolParser]) -> Constraint | None:
    if forced:
        return constraint(forced, req.parallel_tool_calls, parser.call_format)
    schema = output_schema(req.text)
    # Strings without a bound of their own get one in the grammar, as in forced calls: a never-closed string
    # would otherwise run to max_output_tokens and leave JSON that does not parse.
    return Constraint(json=bounded(schema)) if schema is not None else None
