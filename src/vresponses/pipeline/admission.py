"""A bounded queue in front of the engine: requests and prefill tokens in flight, per-request limits, and the one
place that can stop a running request early (its wall-clock limit, a drain that timed out, a dead engine).

Foreground requests beyond a bound are refused at once with 429 and Retry-After, so a client never waits in an
unbounded queue; background responses are admitted whatever the load (they are queued by nature and bounded by the
background-job limit) but are counted like the rest. Stopping a request aborts it in the engine and makes its
stream raise the reason, so a streaming client gets an error event and a waiting one an error status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import cast

from vresponses.engines.base import (
    NO_PLACEMENT,
    Engine,
    EngineDelta,
    EngineError,
    ModelInfo,
    Placement,
    SamplingOptions,
    Tokenizer,
)
from vresponses.errors import APIError, InvalidRequest, RequestTimeout, TooManyRequests

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    """Admission bounds; None means "fit to the engine" for the queue bounds and "no limit" for the others."""

    # Requests in the engine at once (running and waiting); default twice what the engine runs at once.
    max_requests: int | None = None
    # Prompt tokens of admitted requests still waiting for their first token; default what the KV cache holds.
    max_queued_prompt_tokens: int | None = None
    # Prompt tokens of one request (the context length applies anyway).
    max_prompt_tokens: int | None = None
    # Wall-clock seconds one request may run in the engine.
    request_timeout: float | None = 600.0


@dataclass(slots=True)
class _Flight:
    prompt_tokens: int
    prefilling: bool = True
    error: BaseException | None = None
    timer: asyncio.TimerHandle | None = None


@dataclass(slots=True)
class Load:
    """What is in flight now."""

    requests: int = 0
    queued_prompt_tokens: int = 0
    refused: dict[str, int] = field(default_factory=dict)


class Admission:
    """An Engine in front of another: admits within AdmissionLimits, tracks each request, and can stop any of them."""

    def __init__(self, engine: Engine, limits: AdmissionLimits) -> None:
        self.engine = engine
        self.limits = limits
        info = engine.info
        self.max_requests = limits.max_requests or 2 * (info.max_num_seqs or 32) * info.replicas
        self.max_queued_prompt_tokens = (
            limits.max_queued_prompt_tokens or (info.kv_cache_tokens or 8 * info.max_model_len) * info.replicas
        )
        self.load = Load()
        self._flights: dict[str, _Flight] = {}

    @property
    def info(self) -> ModelInfo:
        """The wrapped engine's model."""
        return self.engine.info

    @property
    def tokenizer(self) -> Tokenizer:
        """The wrapped engine's tokenizer."""
        return self.engine.tokenizer

    # -- admission -----------------------------------------------------------------------------------------------

    def has_room(self) -> None:
        """The cheap check before a request body is even read: 429 when the request bound is already reached."""
        if self.load.requests >= self.max_requests:
            raise self._refuse(
                "requests",
                f"The server is at capacity: {self.load.requests} requests are in flight "
                f"(limit {self.max_requests}, --max-concurrent-requests). Retry shortly.",
            )

    def admit(self, prompt_tokens: int, background: bool = False) -> None:
        """Check one prepared request against every bound; raise 400 (too big ever) or 429 (not now)."""
        limit = self.limits.max_prompt_tokens
        if limit is not None and prompt_tokens > limit:
            raise InvalidRequest(
                f"The prompt is {prompt_tokens} tokens long; this server accepts at most {limit} prompt tokens "
                f"per request (--max-prompt-tokens).",
                param="input",
                code="prompt_too_long",
            )
        if background:
            return
        self.has_room()
        queued = self.load.queued_prompt_tokens
        if queued and queued + prompt_tokens > self.max_queued_prompt_tokens:
            raise self._refuse(
                "prompt_tokens",
                f"The server is at capacity: {queued} prompt tokens are waiting for the engine and this request "
                f"adds {prompt_tokens} (limit {self.max_queued_prompt_tokens}, --max-queued-prompt-tokens). "
                f"Retry shortly.",
            )

    def _refuse(self, bound: str, message: str) -> TooManyRequests:
        self.load.refused[bound] = self.load.refused.get(bound, 0) + 1
        return TooManyRequests(message, code="server_at_capacity")

    # -- stopping requests early --------------------------------------------------------------------------------

    def fail(self, request_id: str, error: BaseException) -> None:
        """Stop one request: abort it in the engine and make its stream raise `error`."""
        flight = self._flights.get(request_id)
        if flight is None or flight.error is not None:
            return
        flight.error = error
        asyncio.get_running_loop().create_task(self._abort(request_id), name=f"abort {request_id}")

    def fail_all(self, error: BaseException) -> int:
        """Stop every request in flight with `error`; return how many."""
        ids = [rid for rid, flight in self._flights.items() if flight.error is None]
        for request_id in ids:
            self.fail(request_id, error)
        return len(ids)

    async def _abort(self, request_id: str) -> None:
        try:
            await self.engine.abort(request_id)
        except Exception:
            log.warning("aborting %s failed", request_id, exc_info=True)

    # -- the Engine protocol ------------------------------------------------------------------------------------

    async def generate(
        self,
        request_id: str,
        prompt_token_ids: list[int],
        options: SamplingOptions,
        placement: Placement = NO_PLACEMENT,
    ) -> AsyncIterator[EngineDelta]:
        """The engine's stream, counted while it runs, cut short (raising the reason) when the request is stopped."""
        flight = self._enter(request_id, len(prompt_token_ids))
        stream = cast(
            AsyncGenerator[EngineDelta, None], self.engine.generate(request_id, prompt_token_ids, options, placement)
        )
        try:
            async with aclosing(stream):
                async for delta in stream:
                    if flight.error is not None:
                        break
                    if flight.prefilling:
                        flight.prefilling = False
                        self.load.queued_prompt_tokens -= flight.prompt_tokens
                    yield delta
            if flight.error is not None:
                raise flight.error
        except Exception as exc:
            if flight.error is not None and exc is not flight.error:
                raise flight.error from exc
            raise
        finally:
            self._leave(request_id, flight)

    def _enter(self, request_id: str, prompt_tokens: int) -> _Flight:
        flight = _Flight(prompt_tokens)
        self._flights[request_id] = flight
        self.load.requests += 1
        self.load.queued_prompt_tokens += prompt_tokens
        timeout = self.limits.request_timeout
        if timeout:
            error = RequestTimeout(
                f"The request ran longer than this server's limit of {timeout:g} s (--request-timeout).",
            )
            flight.timer = asyncio.get_running_loop().call_later(timeout, self.fail, request_id, error)
        return flight

    def _leave(self, request_id: str, flight: _Flight) -> None:
        if flight.timer is not None:
            flight.timer.cancel()
        if flight.prefilling:
            self.load.queued_prompt_tokens -= flight.prompt_tokens
        self.load.requests -= 1
        if self._flights.get(request_id) is flight:
            del self._flights[request_id]

    async def abort(self, request_id: str) -> None:
        """Abort in the engine."""
        await self.engine.abort(request_id)

    async def healthy(self) -> bool:
        """The engine's health."""
        return await self.engine.healthy()

    def unfinished_requests(self) -> int:
        """The engine's own count."""
        return self.engine.unfinished_requests()

    async def close(self) -> None:
        """Close the engine."""
        await self.engine.close()


def reason(exc: BaseException) -> str:
    """What a failed response records as its error: the message of errors meant for clients, else the type."""
    if isinstance(exc, APIError):
        return exc.message
    if isinstance(exc, EngineError):
        return str(exc) or type(exc).__name__
    return type(exc).__name__
