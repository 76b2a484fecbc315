"""Wire pieces both dialects write the same way: JSON encoding, token logprobs, usage, tools."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from vresponses.engines.base import TokenLogprob
from vresponses.parsers.base import ToolSpec
from vresponses.pipeline.events import Usage

_json = msgspec.json.Encoder()


def encode(obj: Any) -> bytes:
    """JSON bytes."""
    return _json.encode(obj)


def _bytes(token: str, raw: bytes | None) -> list[int]:
    # The token's own bytes when the engine knew them (byte-fallback pieces are not UTF-8 on their own).
    return list(raw if raw is not None else token.encode())


def logprob_entries(logprobs: Iterable[TokenLogprob]) -> list[dict[str, Any]]:
    """Token logprobs in the wire shape `{token, bytes, logprob, top_logprobs[]}`."""
    return [
        {
            "token": lp.token,
            "bytes": _bytes(lp.token, lp.raw),
            "logprob": lp.logprob,
            "top_logprobs": [{"token": t.token, "bytes": _bytes(t.token, t.raw), "logprob": t.logprob} for t in lp.top],
        }
        for lp in logprobs
    ]


def usage_wire(u: Usage) -> dict[str, Any]:
    """Responses-style usage of a finished response."""
    return {
        "input_tokens": u.input_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens, "tool_output_tokens": u.tool_output_tokens},
        "total_tokens": u.total_tokens,
    }


def tool_wire(tool: ToolSpec) -> dict[str, Any]:
    """A function tool as echoed in a response."""
    return {"type": "function", "name": tool.name, "description": tool.description, "parameters": dict(tool.parameters)}
