"""The narrow engine protocol: token ids and sampling options in, an async stream of deltas out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


class EngineError(Exception):
    """The engine failed or is unavailable; the api maps this to a 503."""


class EngineRejected(EngineError):
    """The engine refused this request's inputs; the api maps this to a 400."""


class EngineBusy(EngineError):
    """The engine's queue is full; the api maps this to a 429."""


@dataclass(frozen=True, slots=True)
class TopLogprob:
    """One candidate token at a position."""

    token: str
    logprob: float
    # The token's raw bytes (None where unknown: the token's UTF-8 encoding stands in).
    raw: bytes | None = None


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """The chosen token at a position, its logprob and the top candidates."""

    token: str
    logprob: float
    top: tuple[TopLogprob, ...] = ()
    raw: bytes | None = None


@dataclass(frozen=True, slots=True)
class Constraint:
    """A structured-output constraint: exactly one of json (a JSON Schema) or structural_tag (xgrammar's format)."""

    json: dict[str, object] | None = None
    structural_tag: str | None = None


@dataclass(frozen=True, slots=True)
class SamplingOptions:
    """What the engine needs to sample one completion; validated before it gets here."""

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    logprobs: int | None = None
    constraint: Constraint | None = None
    seed: int | None = None
    skip_special_tokens: bool = True


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a request may reuse cached work: its tenant's prefix-cache salt and the replica its conversation used."""

    # Prefix-cache blocks are shared only between requests with the same salt (vLLM's `cache_salt`).
    cache_salt: str | None = None
    # The replica that served the conversation's previous turn, for engines that route between replicas.
    affinity: str | None = None


NO_PLACEMENT = Placement()


@dataclass(frozen=True, slots=True)
class EngineDelta:
    """What one engine step produced for one request."""

    text: str
    token_ids: Sequence[int]
    logprobs: tuple[TokenLogprob, ...] = ()
    finish_reason: str | None = None  # "stop" | "length" | "abort" on the last delta
    prompt_tokens: int = 0
    cached_tokens: int = 0
    # Which replica produced this (engines with several); stored with the response for affinity routing.
    replica: str | None = None


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the server needs to know about the loaded model."""

    name: str
    max_model_len: int
    created: int = 0
    # The model's own sampling defaults (generation_config.json), applied where a request leaves a value unset.
    sampling_defaults: Mapping[str, float] = field(default_factory=dict)
    # Capacity, where the engine knows it: sequences it runs at once and tokens its KV cache holds.
    max_num_seqs: int | None = None
    kv_cache_tokens: int | None = None
    # Engines that spread requests over replicas route a conversation back to the one that served its last turn.
    routes_by_affinity: bool = False
    # How many engines of this capacity serve behind this one (remote replicas); admission's defaults scale with it.
    replicas: int = 1


class Tokenizer(Protocol):
    """The subset of a Hugging Face tokenizer the pipeline uses."""

    chat_template: str | None
    eos_token: str | None
    bos_token: str | None

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...


class Engine(Protocol):
    """Generates from token ids; one implementation per engine kind, plus a scripted fake."""

    @property
    def info(self) -> ModelInfo:
        """The loaded model."""
        ...

    @property
    def tokenizer(self) -> Tokenizer:
        """The model's tokenizer (rendering happens in front of the engine)."""
        ...

    def generate(
        self,
        request_id: str,
        prompt_token_ids: list[int],
        options: SamplingOptions,
        placement: Placement = NO_PLACEMENT,
    ) -> AsyncIterator[EngineDelta]:
        """Stream deltas until the request finishes; raise EngineError if the engine fails."""
        ...

    async def abort(self, request_id: str) -> None:
        """Stop a request; a no-op for one that already finished."""

    async def healthy(self) -> bool:
        """Whether the engine can serve requests."""
        ...

    def unfinished_requests(self) -> int:
        """How many requests the engine is still working on."""
        ...

    async def close(self) -> None:
        """Release the engine."""
