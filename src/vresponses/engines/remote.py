"""Remote vLLM replicas behind the engine protocol: render and tokenize here, generate there, route between them.

Each request goes to one replica over vLLM's token-in/token-out API (see `wire`), chosen by the `Router`. A request
that fails before its first token is retried once on another replica; one that fails later raises EngineError.
A background task probes the replicas: a failing one is taken out and re-admitted (after `replica_check`) with
backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

import httpx

from vresponses.engines import wire
from vresponses.engines.base import (
    NO_PLACEMENT,
    EngineBusy,
    EngineDelta,
    EngineError,
    EngineRejected,
    ModelInfo,
    Placement,
    SamplingOptions,
    Tokenizer,
)
from vresponses.engines.replica_check import ReplicaInfo, ReplicaRefused, check_replica
from vresponses.engines.router import Backoff, NoReplica, Policy, Replica, ReplicaStats, Router, Ticket

log = logging.getLogger(__name__)

# Connection errors that mean the replica cannot be reached at all (as opposed to a pooled connection gone stale).
_UNREACHABLE = (httpx.ConnectError, httpx.TimeoutException)


@dataclass(frozen=True)
class RemoteOptions:
    """Where the replicas are and how to route between them."""

    urls: tuple[str, ...]
    # The model folder or hub id the replicas serve: its tokenizer and chat template render prompts here.
    model: str
    served_model_name: str | None = None
    routing: Policy = Policy.CACHE_AWARE
    api_key: str | None = None
    trust_remote_code: bool = False
    # Blocks the prefix index remembers (about 180 bytes each: 24 MB at the default); their size is the replicas'.
    index_blocks: int = 1 << 17
    probe_interval: float = 2.0
    probe_timeout: float = 10.0
    # Health probes that time out or fail in a row before a replica is taken out (refused connections: at once).
    probe_misses: int = 2
    connect_timeout: float = 5.0
    # The longest wait for the next token (a long prefill under load comes first): past it the replica is out.
    read_timeout: float = 600.0
    backoff: Backoff = field(default_factory=Backoff)


@dataclass(eq=False, slots=True)
class _Flight:
    """One attempt of one request on one replica."""

    ticket: Ticket
    response: httpx.Response | None = None
    produced: bool = False
    output: list[int] = field(default_factory=list)
    usage: wire.Usage | None = None
    released: bool = False


class _Retry(Exception):
    """This attempt failed before any token: try another replica once, else raise `final`."""

    def __init__(self, final: EngineError) -> None:
        super().__init__(str(final))
        self.final = final


class RemoteEngine:
    """Generates on vLLM replicas; the tokenizer and chat template are loaded here from the model folder."""

    def __init__(
        self,
        options: RemoteOptions,
        tokenizer: Tokenizer,
        info: ModelInfo,
        transport: httpx.AsyncBaseTransport | None = None,
        router: Router | None = None,
    ) -> None:
        self.options = options
        self.tokenizer = tokenizer
        # Which replica served a conversation's last turn decides where its next one goes.
        self.info = replace(info, routes_by_affinity=True, replicas=max(1, len(options.urls)))
        self.router = router or Router(
            (url.rstrip("/") for url in options.urls),
            policy=options.routing,
            index_blocks=options.index_blocks,
            backoff=options.backoff,
        )
        headers = {"Content-Type": "application/json"}
        if options.api_key:
            headers["Authorization"] = f"Bearer {options.api_key}"
        self._client = httpx.AsyncClient(
            transport=transport,
            headers=headers,
            timeout=httpx.Timeout(options.read_timeout, connect=options.connect_timeout, pool=None),
            # vLLM (uvicorn) drops idle connections after 5 s: expire ours first so a reused one is never stale.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=512, keepalive_expiry=4.0),
        )
        self._flights: dict[str, _Flight] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._probe_ids = list(tokenizer.encode("Hello", add_special_tokens=False)) or [0]
        self._replica_len: dict[str, int] = {}
        self._misses: dict[str, int] = {}
        self._prober: asyncio.Task[None] | None = None
        self.checked = asyncio.Event()

    @classmethod
    def start(cls, options: RemoteOptions) -> RemoteEngine:
        """Load the tokenizer and start probing the replicas (they are admitted as they pass their checks)."""
        from transformers import AutoConfig, AutoTokenizer

        # httpx logs every request at INFO: one line per generation and per probe is noise, not news.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        tokenizer = AutoTokenizer.from_pretrained(options.model, trust_remote_code=options.trust_remote_code)
        config = AutoConfig.from_pretrained(options.model, trust_remote_code=options.trust_remote_code)
        # A placeholder until the first replica reports its own (possibly smaller) context.
        context = int(getattr(config, "max_position_embeddings", 0) or tokenizer.model_max_length)
        name = options.served_model_name or options.model
        info = ModelInfo(name=name, max_model_len=context, created=int(time.time()))
        engine = cls(options, cast(Tokenizer, tokenizer), info)
        engine.open()
        return engine

    def open(self) -> None:
        """Start the background prober; call with an event loop running."""
        if self._prober is None:
            self._prober = asyncio.get_running_loop().create_task(self._probe_forever())

    async def generate(
        self,
        request_id: str,
        prompt_token_ids: list[int],
        options: SamplingOptions,
        placement: Placement = NO_PLACEMENT,
    ) -> AsyncIterator[EngineDelta]:
        """Stream deltas from a replica; retry once elsewhere if it fails before the first token."""
        body = wire.generate_body(request_id, prompt_token_ids, options, placement)
        failed: list[Replica] = []
        for attempt in (0, 1):
            flight = _Flight(self._route(prompt_token_ids, placement, failed, retry=attempt > 0))
            self._flights[request_id] = flight
            try:
                async for delta in self._attempt(flight, request_id, body, options):
                    yield delta
                return
            except _Retry as exc:
                if attempt:
                    raise exc.final from exc
                failed.append(flight.ticket.replica)
                log.warning("retrying %s elsewhere: %s", request_id, exc)
            finally:
                self._release(request_id, flight)

    def _route(self, prompt: Sequence[int], placement: Placement, failed: list[Replica], retry: bool) -> Ticket:
        affinity, salt = placement.affinity, placement.cache_salt
        try:
            return self.router.route(prompt, affinity, failed, retry=retry, salt=salt)
        except NoReplica as exc:
            # With no other replica up, a retry goes back to the one that failed, if it is still in.
            if failed and failed[-1].up:
                return self.router.route(prompt, affinity, (), retry=True, salt=salt)
            raise EngineError(f"{exc} ({len(self.router.replicas)} configured)") from None

    async def _attempt(
        self, flight: _Flight, request_id: str, body: bytes, options: SamplingOptions
    ) -> AsyncIterator[EngineDelta]:
        replica = flight.ticket.replica
        try:
            async with self._client.stream("POST", replica.url + wire.GENERATE_PATH, content=body) as response:
                flight.response = response
                if response.status_code != 200:
                    raise _status_error(replica.url, response.status_code, await response.aread())
                async for delta in self._deltas(flight, response, options):
                    yield delta
        except httpx.TransportError as exc:
            if flight.produced or isinstance(exc, _UNREACHABLE):
                self.router.failed(replica, f"{type(exc).__name__}: {exc}")
            if flight.produced:
                raise EngineError(f"replica {replica.url} failed mid-stream: {type(exc).__name__}") from exc
            raise _Retry(EngineError(f"replica {replica.url} failed: {type(exc).__name__}")) from exc

    async def _deltas(
        self, flight: _Flight, response: httpx.Response, options: SamplingOptions
    ) -> AsyncIterator[EngineDelta]:
        url = flight.ticket.replica.url
        k = options.logprobs or 0
        want_logprobs = options.logprobs is not None
        lines = wire.SSELines()
        # The finishing step waits for the usage line that follows it, so it can carry the token counts.
        last: EngineDelta | None = None
        sent = False
        async for data in response.aiter_bytes():
            for payload in lines.feed(data):
                if payload == wire.DONE:
                    if last is None:
                        raise httpx.RemoteProtocolError("the stream ended without a finish reason")
                    if not sent:
                        yield last
                    return
                chunk = _decode(payload, url)
                if chunk.error is not None:
                    raise _chunk_error(url, chunk.error, flight.produced)
                flight.usage = chunk.usage or flight.usage
                for choice in chunk.choices:
                    if not flight.produced:
                        flight.produced = True
                        flight.ticket.first_token()
                    ids = choice.token_ids or ()
                    flight.output.extend(ids)
                    delta = EngineDelta(
                        text=choice.text,
                        token_ids=ids,
                        logprobs=wire.logprobs_of(choice, k) if want_logprobs else (),
                        finish_reason=choice.finish_reason,
                        replica=url,
                    )
                    if choice.finish_reason is None:
                        yield delta
                    else:
                        last = delta
                if last is not None and flight.usage is not None and not sent:
                    # Read on to [DONE] afterwards: a response read to its end leaves its connection reusable.
                    sent = True
                    usage = flight.usage
                    yield replace(last, prompt_tokens=usage.prompt_tokens, cached_tokens=usage.cached_tokens)
        if sent:
            return
        raise httpx.RemoteProtocolError("the stream ended before [DONE]")

    def _release(self, request_id: str, flight: _Flight) -> None:
        if flight.released:
            return
        flight.released = True
        if self._flights.get(request_id) is flight:
            del self._flights[request_id]
        usage = flight.usage
        self.router.finish(
            flight.ticket,
            flight.output,
            usage.prompt_tokens if usage else 0,
            usage.cached_tokens if usage else 0,
        )

    async def abort(self, request_id: str) -> None:
        """Close the request's stream (the replica aborts on disconnect) and tell the replica, in the background."""
        flight = self._flights.get(request_id)
        if flight is None:
            return
        self._release(request_id, flight)
        if flight.response is not None:
            await flight.response.aclose()
        task = asyncio.get_running_loop().create_task(self._post_abort(flight.ticket.replica.url, request_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _post_abort(self, url: str, request_id: str) -> None:
        try:
            await self._client.post(url + wire.ABORT_PATH, content=wire.abort_body(request_id), timeout=5.0)
        except httpx.HTTPError as exc:
            log.info("abort of %s on %s not delivered: %s", request_id, url, exc)

    async def healthy(self) -> bool:
        """Whether at least one replica is in."""
        return any(r.up for r in self.router.replicas)

    def unfinished_requests(self) -> int:
        """Requests this front end has in flight on all replicas."""
        return sum(r.in_flight for r in self.router.replicas)

    def replica_stats(self) -> list[ReplicaStats]:
        """Per-replica health, load and counters."""
        return self.router.stats()

    def index_stats(self) -> tuple[int, int]:
        """The prefix index's size: blocks held and approximate bytes."""
        return len(self.router.index), self.router.index.nbytes()

    async def close(self) -> None:
        """Stop probing and close connections."""
        tasks = [t for t in (self._prober, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._prober = None
        await self._client.aclose()

    async def _probe_forever(self) -> None:
        while True:
            try:
                await self.probe()
            except Exception:
                log.exception("replica probe failed")
            self.checked.set()
            await asyncio.sleep(self.options.probe_interval)

    async def probe(self) -> None:
        """One round: health of the replicas that are in, full checks of those due back in."""
        due = self.router.due()
        checks = [self._check(r) for r in due]
        checks += [self._health(r) for r in self.router.replicas if r.up]
        await asyncio.gather(*checks)

    async def _health(self, replica: Replica) -> None:
        try:
            response = await self._client.get(replica.url + "/health", timeout=self.options.probe_timeout)
            problem = None if response.status_code == 200 else f"health probe answered {response.status_code}"
        except httpx.HTTPError as exc:
            problem = f"health probe: {type(exc).__name__}"
            if isinstance(exc, httpx.ConnectError):
                self._misses[replica.url] = self.options.probe_misses  # refused: nobody is there
        if problem is None:
            self._misses.pop(replica.url, None)
            return
        # One slow answer from a busy replica is not an outage; several in a row are.
        misses = self._misses[replica.url] = self._misses.get(replica.url, 0) + 1
        if misses >= self.options.probe_misses:
            self._misses.pop(replica.url, None)
            self.router.failed(replica, problem)
            log.warning("replica %s is out: %s", replica.url, problem)

    async def _check(self, replica: Replica) -> None:
        try:
            info = await check_replica(self._client, replica.url, self._probe_ids, self.options.probe_timeout)
        except (httpx.HTTPError, ReplicaRefused, ValueError) as exc:
            level = logging.ERROR if isinstance(exc, ReplicaRefused) else logging.INFO
            log.log(level, "replica %s not admitted: %s", replica.url, exc)
            self.router.failed(replica, str(exc) or type(exc).__name__)
            return
        self._admit(replica, info)

    def _admit(self, replica: Replica, info: ReplicaInfo) -> None:
        if info.block_size:
            self.router.use_block_size(info.block_size)
        self._replica_len[replica.url] = info.max_model_len
        context = min(self._replica_len.values())
        if context and context != self.info.max_model_len:
            self.info = replace(self.info, max_model_len=context)
        self.router.admitted(replica, info.started_at)
        log.info("replica %s is in (vLLM %s, context %d)", replica.url, info.version, info.max_model_len)


def _decode(payload: bytes, url: str) -> wire.Chunk:
    try:
        return wire.decode_chunk(payload)
    except ValueError as exc:
        raise EngineError(f"replica {url} sent {exc}") from None


def _status_error(url: str, status: int, body: bytes) -> Exception:
    message = wire.error_message(body)
    if status in (400, 422):
        return EngineRejected(message)
    error: EngineError = EngineBusy(message) if status in (429, 503) else EngineError(f"replica {url}: {message}")
    return _Retry(error)


def _chunk_error(url: str, error: Any, produced: bool) -> Exception:
    if error.code == 400:
        return EngineRejected(error.message)
    failure = EngineError(f"replica {url}: {error.message}")
    return failure if produced else _Retry(failure)
