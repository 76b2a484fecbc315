"""A simulated vLLM replica speaking the token-in/token-out API, for tests and `make bench-scale` (not a product path).

Latency model: a request waits for one of `max_running` slots, then prefills (`prefill_s` per prompt token not in
the replica's prefix cache), then emits one token every `decode_s`. The prefix cache is an LRU of `cache_blocks`
whole blocks of `block_size` tokens, keyed by chained block hashes as vLLM keys its own. Output is `output_tokens`
words (finish "stop"), or `max_tokens` of them when that is smaller (finish "length").

    python bench/replica_sim.py --replicas 8 --port 9100     # replicas on ports 9100..9107
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

WORDS = [f" w{i}" for i in range(64)]
WORD_IDS = [1000 + i for i in range(64)]
EOS_ID = 2


@dataclass(frozen=True)
class SimConfig:
    """One simulated replica's model and latency model."""

    model: str = "SmolLM2-135M-Instruct"
    max_model_len: int = 8192
    block_size: int = 16
    cache_blocks: int = 8192
    max_running: int = 64
    prefill_s: float = 0.0001
    decode_s: float = 0.02
    output_tokens: int = 16
    version: str = "0.32.0"
    # Behave as `vllm serve --tokens-only`: no tokenizer, so text mode is refused.
    tokens_only: bool = False


class _Params(msgspec.Struct):
    max_tokens: int = 16
    logprobs: int | None = None


class _Request(msgspec.Struct):
    token_ids: list[int]
    sampling_params: _Params = msgspec.field(default_factory=_Params)
    request_id: str = ""
    stream: bool = False
    output_mode: str = "tokens"


@dataclass
class SimStats:
    """What a replica served since start or reset."""

    requests: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    aborted: int = 0
    running: int = 0


@dataclass
class SimReplica:
    """One replica's prefix cache, slots, counters and per-request timings."""

    config: SimConfig = field(default_factory=SimConfig)
    started_at: float = field(default_factory=time.time)
    stats: SimStats = field(default_factory=SimStats)
    # request id -> (monotonic time the request arrived, monotonic time its first token was sent)
    timings: dict[str, tuple[float, float]] = field(default_factory=dict)
    healthy: bool = True
    _cache: OrderedDict[int, None] = field(default_factory=OrderedDict)
    _aborted: set[str] = field(default_factory=set)
    _slots: asyncio.Semaphore | None = None

    def cached_prefix(self, tokens: list[int]) -> int:
        """Tokens of this prompt already cached (whole leading blocks); the prompt's blocks are cached after."""
        size = self.config.block_size
        h, hashes = 0, []
        for i in range(0, len(tokens) - size + 1, size):
            h = hash((h, *tokens[i : i + size]))
            hashes.append(h)
        hit = 0
        for h in hashes:
            if h not in self._cache:
                break
            hit += 1
        for h in reversed(hashes):
            self._cache[h] = None
            self._cache.move_to_end(h)
        while len(self._cache) > self.config.cache_blocks:
            self._cache.popitem(last=False)
        return hit * size

    def reset(self) -> None:
        """Empty the cache and the counters."""
        self._cache.clear()
        self.stats = SimStats()
        self.timings.clear()

    async def generate(self, request: Request) -> Response:
        """POST /inference/v1/generate (streaming, text or tokens mode)."""
        arrived = time.monotonic()
        try:
            req = msgspec.json.decode(await request.body(), type=_Request)
        except msgspec.ValidationError as exc:
            return _error(str(exc))
        if not req.stream:
            return _error("the simulator only streams")
        if req.sampling_params.max_tokens < 1:
            return _error("max_tokens must be at least 1")
        if self.config.tokens_only and req.output_mode != "tokens":
            return _error("output_mode='text' requires a tokenizer, but this server does not load one")
        return StreamingResponse(self._stream(req, arrived), media_type="text/event-stream")

    async def _stream(self, req: _Request, arrived: float) -> AsyncIterator[bytes]:
        cfg = self.config
        if self._slots is None:
            self._slots = asyncio.Semaphore(cfg.max_running)
        rid = "generate-tokens-" + req.request_id
        head = b'data: {"request_id":"' + rid.encode() + b'","usage":null,"output_mode":"text","choices":[{"index":0,'
        async with self._slots:
            self.stats.running += 1
            try:
                cached = self.cached_prefix(req.token_ids)
                self.stats.requests += 1
                self.stats.prompt_tokens += len(req.token_ids)
                self.stats.cached_tokens += cached
                await asyncio.sleep(cfg.prefill_s * (len(req.token_ids) - cached))
                limit = req.sampling_params.max_tokens
                # Words then the end token ("stop"), or max_tokens words when the output would not fit ("length").
                finish = "stop" if limit > cfg.output_tokens else "length"
                steps = [(WORDS[i % 64], WORD_IDS[i % 64]) for i in range(min(limit, cfg.output_tokens))]
                if finish == "stop":
                    steps.append(("", EOS_ID))
                produced = 0
                for i, (word, token) in enumerate(steps):
                    if i:
                        await asyncio.sleep(cfg.decode_s)
                    reason = finish if i == len(steps) - 1 else None
                    if req.request_id in self._aborted:
                        reason = "abort"
                    yield head + _choice(word, token, reason, req.sampling_params.logprobs)
                    produced += 1
                    if i == 0:
                        self.timings[req.request_id] = (arrived, time.monotonic())
                    if reason is not None:
                        break
                self.stats.output_tokens += produced
                usage = {
                    "prompt_tokens": len(req.token_ids),
                    "completion_tokens": produced,
                    "total_tokens": len(req.token_ids) + produced,
                    "prompt_tokens_details": {"cached_tokens": cached},
                }
                yield b"data: " + msgspec.json.encode({"request_id": rid, "usage": usage, "choices": []}) + b"\n\n"
                yield b"data: [DONE]\n\n"
            finally:
                self.stats.running -= 1
                self._aborted.discard(req.request_id)

    async def abort(self, request: Request) -> Response:
        """POST /inference/v1/abort_requests."""
        ids = msgspec.json.decode(await request.body()).get("request_ids") or []
        for rid in ids:
            self._aborted.add(rid.removeprefix("generate-tokens-"))
        self.stats.aborted += len(ids)
        return Response(status_code=200)

    def app(self) -> Starlette:
        """The replica's HTTP API."""
        cfg = self.config

        async def health(_: Request) -> Response:
            return Response(status_code=200 if self.healthy else 503)

        async def version(_: Request) -> Response:
            return JSONResponse({"version": cfg.version})

        async def models(_: Request) -> Response:
            return JSONResponse({"object": "list", "data": [{"id": cfg.model, "max_model_len": cfg.max_model_len}]})

        async def metrics(_: Request) -> Response:
            return PlainTextResponse(
                f'vllm:cache_config_info{{block_size="{cfg.block_size}",enable_prefix_caching="True"}} 1.0\n'
                f"process_start_time_seconds {self.started_at}\n"
            )

        async def stats(_: Request) -> Response:
            return JSONResponse(msgspec.to_builtins(self.stats))

        async def timings(_: Request) -> Response:
            return Response(msgspec.json.encode(self.timings), media_type="application/json")

        async def reset(_: Request) -> Response:
            self.reset()
            return Response(status_code=204)

        return Starlette(
            routes=[
                Route("/inference/v1/generate", self.generate, methods=["POST"]),
                Route("/inference/v1/abort_requests", self.abort, methods=["POST"]),
                Route("/health", health),
                Route("/version", version),
                Route("/v1/models", models),
                Route("/metrics", metrics),
                Route("/sim/stats", stats),
                Route("/sim/timings", timings),
                Route("/sim/reset", reset, methods=["POST"]),
            ]
        )


def _error(message: str) -> Response:
    return JSONResponse({"error": {"message": message, "type": "BadRequestError", "param": None, "code": 400}}, 400)


def _choice(word: str, token: int, finish: str | None, logprobs: int | None) -> bytes:
    lp = b"null"
    if logprobs is not None:
        others = [{"token": w, "logprob": -2.0 - j} for j, w in enumerate(WORDS[:logprobs])]
        top = [{"token": word, "logprob": -0.25}, *others]
        lp = msgspec.json.encode({"content": [{"token": word, "logprob": -0.25, "top_logprobs": top}]})
    reason = b"null" if finish is None else b'"' + finish.encode() + b'"'
    return (
        b'"finish_reason":' + reason + b',"token_ids":[' + str(token).encode() + b'],"text":'
        + msgspec.json.encode(word) + b',"logprobs":' + lp + b"}]}\n\n"
    )  # fmt: skip


async def serve(replicas: int, port: int, config: SimConfig, host: str = "127.0.0.1") -> None:
    """Serve `replicas` simulated replicas on consecutive ports in this process until cancelled."""
    import uvicorn

    servers = [
        uvicorn.Server(
            uvicorn.Config(SimReplica(config).app(), host=host, port=port + i, log_level="warning", access_log=False)
        )
        for i in range(replicas)
    ]
    await asyncio.gather(*(s.serve() for s in servers))


def main() -> None:
    """Command line: replica count, first port, and the latency model."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--port", type=int, default=9100)
    defaults = SimConfig()
    for name in ("max_model_len", "block_size", "cache_blocks", "max_running", "output_tokens"):
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name))
    for name in ("prefill_s", "decode_s"):
        parser.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(defaults, name))
    parser.add_argument("--model", default=defaults.model)
    args = parser.parse_args()
    config = SimConfig(
        model=args.model,
        max_model_len=args.max_model_len,
        block_size=args.block_size,
        cache_blocks=args.cache_blocks,
        max_running=args.max_running,
        prefill_s=args.prefill_s,
        decode_s=args.decode_s,
        output_tokens=args.output_tokens,
    )
    asyncio.run(serve(args.replicas, args.port, config))


if __name__ == "__main__":
    main()
