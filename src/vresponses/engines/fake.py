"""A scripted engine for unit tests of the layers above the engine: it replays queued outputs."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from vresponses.engines.base import (
    NO_PLACEMENT,
    EngineDelta,
    EngineError,
    ModelInfo,
    Placement,
    SamplingOptions,
    TokenLogprob,
)

# Ids of a FakeTokenizer's special tokens start here (above every code point).
SPECIAL_BASE = 0x110000


class FakeTokenizer:
    """Whitespace-free toy tokenizer: one token per character, ChatML template; special tokens when given."""

    chat_template: str | None = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    eos_token: str | None = "<|im_end|>"
    bos_token: str | None = None
    # Strings encoded as one id each (SPECIAL_BASE + their index), as a real tokenizer's special tokens are.
    all_special_tokens: tuple[str, ...] = ()

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """One id per character (its code point), or per special token wherever one is spelled."""
        ids: list[int] = []
        i = 0
        while i < len(text):
            for n, special in enumerate(self.all_special_tokens):
                if text.startswith(special, i):
                    ids.append(SPECIAL_BASE + n)
                    i += len(special)
                    break
            else:
                ids.append(ord(text[i]))
                i += 1
        return ids


@dataclass
class Script:
    """One scripted completion: text pieces yielded one step each, then a finish reason."""

    pieces: Sequence[str]
    finish_reason: str = "stop"
    cached_tokens: int = 0
    delay: float = 0.0
    fail_after: int | None = None


@dataclass
class FakeEngine:
    """Replays `enqueue`d scripts in order; records every request it saw."""

    info: ModelInfo = field(default_factory=lambda: ModelInfo(name="fake-model", max_model_len=4096))
    tokenizer: FakeTokenizer = field(default_factory=FakeTokenizer)
    scripts: deque[Script] = field(default_factory=deque)
    requests: list[tuple[str, list[int], SamplingOptions]] = field(default_factory=list)
    placements: list[Placement] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)
    alive: bool = True
    _running: set[str] = field(default_factory=set)

    def enqueue(self, *pieces: str, **kwargs: object) -> Script:
        """Queue a completion made of these text pieces."""
        script = Script(pieces=pieces, **kwargs)  # type: ignore[arg-type]
        self.scripts.append(script)
        return script

    async def generate(
        self,
        request_id: str,
        prompt_token_ids: list[int],
        options: SamplingOptions,
        placement: Placement = NO_PLACEMENT,
    ) -> AsyncIterator[EngineDelta]:
        """Yield the next script's pieces, honouring max_tokens (one token per piece)."""
        if not self.alive:
            raise EngineError("fake engine is dead")
        self.requests.append((request_id, list(prompt_token_ids), options))
        self.placements.append(placement)
        script = self.scripts.popleft() if self.scripts else Script(pieces=("ok",))
        self._running.add(request_id)
        try:
            pieces = list(script.pieces)
            finish = script.finish_reason
            if len(pieces) > options.max_tokens:
                pieces, finish = pieces[: options.max_tokens], "length"
            if not pieces:
                pieces = [""]
            for i, piece in enumerate(pieces):
                if script.fail_after is not None and i >= script.fail_after:
                    raise EngineError("scripted failure")
                if script.delay:
                    await asyncio.sleep(script.delay)
                if request_id in self.aborted:
                    return
                last = i == len(pieces) - 1
                logprobs: tuple[TokenLogprob, ...] = ()
                if options.logprobs is not None:
                    logprobs = (TokenLogprob(token=piece, logprob=-0.5),)
                yield EngineDelta(
                    text=piece,
                    token_ids=[i],
                    logprobs=logprobs,
                    finish_reason=finish if last else None,
                    prompt_tokens=len(prompt_token_ids),
                    cached_tokens=script.cached_tokens,
                )
        finally:
            self._running.discard(request_id)

    async def abort(self, request_id: str) -> None:
        """Remember the abort; the running generator stops at its next step."""
        self.aborted.append(request_id)
        self._running.discard(request_id)

    async def healthy(self) -> bool:
        """Whether the test marked the engine alive."""
        return self.alive

    def unfinished_requests(self) -> int:
        """Scripts still being replayed."""
        return len(self._running)

    async def close(self) -> None:
        """Nothing to release."""
        self.alive = False
