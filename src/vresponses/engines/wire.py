"""vLLM's token-in/token-out wire protocol (`POST /inference/v1/generate`), as the remote engine speaks it.

A replica runs `vllm serve MODEL --enable-scale-out --enable-prompt-tokens-details`: it loads the tokenizer, so
structured outputs, stop strings and detokenization behave exactly as in-process; a `--tokens-only` replica
rejects all three (measured with vLLM 0.32.0), so the front end asks for `output_mode: "text"` and refuses
such replicas when it checks them.
"""

from __future__ import annotations

import json
import re

import msgspec

from vresponses.engines.base import Placement, SamplingOptions, TokenLogprob, TopLogprob

GENERATE_PATH = "/inference/v1/generate"
ABORT_PATH = "/inference/v1/abort_requests"
# The replica prefixes the request id it was given; aborts must name the prefixed id.
REPLICA_ID_PREFIX = "generate-tokens-"
# The wire protocol was tested with these vLLM releases: [lowest, first untested).
TESTED_VERSIONS = ((0, 32), (0, 33))
REPLICA_FLAGS = "--enable-scale-out --enable-prompt-tokens-details"


def version_supported(version: str) -> bool:
    """Whether a replica's `/version` string is in the tested range (major.minor; local suffixes ignored)."""
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None:
        return False
    lowest, untested = TESTED_VERSIONS
    return lowest <= (int(match[1]), int(match[2])) < untested


def tested_range() -> str:
    """The tested range in words, for error messages and docs."""
    (a, b), (c, d) = TESTED_VERSIONS
    return f">={a}.{b},<{c}.{d}"


class _Body(msgspec.Struct):
    request_id: str
    token_ids: list[int]
    sampling_params: dict[str, object]
    stream: bool = True
    stream_options: dict[str, bool] = msgspec.field(default_factory=lambda: {"include_usage": True})
    output_mode: str = "text"
    cache_salt: str | None = None


_ENCODER = msgspec.json.Encoder()


def sampling_params(options: SamplingOptions) -> dict[str, object]:
    """vLLM's SamplingParams fields for these options, as JSON."""
    params: dict[str, object] = {
        "n": 1,
        "max_tokens": options.max_tokens,
        "temperature": options.temperature,
        "top_p": options.top_p,
        "skip_special_tokens": options.skip_special_tokens,
    }
    if options.stop:
        params["stop"] = list(options.stop)
    if options.logprobs is not None:
        # The text-mode stream lists the sampled token first and keeps max(k, 1) entries, so a sampled token
        # outside the top k would push the k-th one out: ask for one more and keep the best k (see top_k_of).
        params["logprobs"] = min(options.logprobs + 1, 20) if options.logprobs else 0
    if options.seed is not None:
        params["seed"] = options.seed
    if options.constraint is not None:
        if options.constraint.json is not None:
            params["structured_outputs"] = {"json": json.dumps(options.constraint.json)}
        else:
            params["structured_outputs"] = {"structural_tag": options.constraint.structural_tag}
    return params


def generate_body(
    request_id: str, prompt_token_ids: list[int], options: SamplingOptions, placement: Placement
) -> bytes:
    """The JSON body of one streaming generate request."""
    body = _Body(
        request_id=request_id,
        token_ids=prompt_token_ids,
        sampling_params=sampling_params(options),
        cache_salt=placement.cache_salt or None,
    )
    return _ENCODER.encode(body)


def abort_body(request_id: str) -> bytes:
    """The JSON body that aborts one request."""
    return _ENCODER.encode({"request_ids": [REPLICA_ID_PREFIX + request_id]})


class _Top(msgspec.Struct):
    token: str = ""
    logprob: float = -9999.0


class _Position(msgspec.Struct):
    token: str = ""
    logprob: float = -9999.0
    top_logprobs: list[_Top] = []


class _Logprobs(msgspec.Struct):
    content: list[_Position] | None = None


class Choice(msgspec.Struct):
    """One step's output for the request."""

    text: str = ""
    token_ids: list[int] | None = None
    finish_reason: str | None = None
    logprobs: _Logprobs | None = None


class _Details(msgspec.Struct):
    cached_tokens: int | None = None


class Usage(msgspec.Struct):
    """The final usage chunk's counts."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_tokens_details: _Details | None = None

    @property
    def cached_tokens(self) -> int:
        """Prompt tokens served from the replica's prefix cache (0 when it does not report them)."""
        details = self.prompt_tokens_details
        return (details.cached_tokens or 0) if details is not None else 0


class ErrorBody(msgspec.Struct):
    """vLLM's error object (in a 4xx/5xx body or an in-band `data:` line)."""

    message: str = ""
    type: str = ""
    code: int | None = None


class Chunk(msgspec.Struct):
    """One `data:` line of the stream."""

    choices: list[Choice] = []
    usage: Usage | None = None
    error: ErrorBody | None = None


class ErrorResponse(msgspec.Struct):
    """A non-200 answer's body."""

    error: ErrorBody | None = None


DONE = b"[DONE]"
_CHUNK = msgspec.json.Decoder(Chunk)
_ERROR = msgspec.json.Decoder(ErrorResponse)


def decode_chunk(data: bytes) -> Chunk:
    """Decode one `data:` payload; raise ValueError on a malformed one."""
    try:
        return _CHUNK.decode(data)
    except msgspec.DecodeError as exc:
        raise ValueError(f"malformed stream line: {exc}") from None


def error_message(body: bytes) -> str:
    """The message of a non-200 answer, or its start when it is not vLLM's error shape."""
    try:
        error = _ERROR.decode(body).error
    except msgspec.DecodeError:
        return body[:200].decode(errors="replace")
    return error.message if error is not None else body[:200].decode(errors="replace")


class SSELines:
    """Splits a byte stream into `data:` payloads, however the bytes were chunked."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        """The complete payloads the new bytes finish."""
        self._buffer += data
        if b"\n\n" not in self._buffer:
            return []
        *events, self._buffer = self._buffer.split(b"\n\n")
        return [event[6:] if event.startswith(b"data: ") else event[5:].lstrip() for event in events if event]


def logprobs_of(choice: Choice, k: int) -> tuple[TokenLogprob, ...]:
    """The step's token logprobs with exactly the top k candidates, best first."""
    if choice.logprobs is None or not choice.logprobs.content:
        return ()
    return tuple(
        TokenLogprob(token=p.token, logprob=p.logprob, top=top_k_of(p.top_logprobs, k)) for p in choice.logprobs.content
    )


def top_k_of(candidates: list[_Top], k: int) -> tuple[TopLogprob, ...]:
    """The k most likely candidates (the list may carry the sampled token beside them)."""
    if k <= 0:
        return ()
    ranked = sorted(candidates, key=lambda c: c.logprob, reverse=True)[:k]
    return tuple(TopLogprob(c.token, c.logprob) for c in ranked)
