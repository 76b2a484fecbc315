"""RemoteEngine against simulated replicas in-process: streaming, usage, logprobs, retry, failover, probing, abort."""

from __future__ import annotations

import asyncio
import json
import random

import pytest
from bench.replica_sim import SimConfig, SimReplica

from tests.engines.replicas import URLS, Replicas, make_engine
from vresponses.engines import wire
from vresponses.engines.base import (
    Constraint,
    EngineDelta,
    EngineError,
    EngineRejected,
    Placement,
    SamplingOptions,
)
from vresponses.engines.remote import RemoteEngine
from vresponses.engines.router import Backoff, Reason, Router

A, B = URLS
PROMPT = list(range(100, 130))


async def collect(engine: RemoteEngine, prompt: list[int] = PROMPT, **kwargs: object) -> list[EngineDelta]:
    placement = kwargs.pop("placement", Placement())
    options = SamplingOptions(**{"max_tokens": 20, **kwargs})  # type: ignore[arg-type]
    return [d async for d in engine.generate("req-" + str(random.random()), prompt, options, placement)]  # type: ignore[arg-type]


async def test_streams_text_token_ids_usage_and_replica(remote: RemoteEngine) -> None:
    deltas = await collect(remote)
    assert "".join(d.text for d in deltas) == "".join(f" w{i}" for i in range(6))
    assert [d.finish_reason for d in deltas] == [None] * 6 + ["stop"]
    assert sum(len(d.token_ids) for d in deltas) == 7
    last = deltas[-1]
    assert (last.prompt_tokens, last.cached_tokens) == (30, 0)
    assert {d.replica for d in deltas} <= set(URLS) and len({d.replica for d in deltas}) == 1
    # The same prompt again: the prefix index sends it where its blocks are, and the replica reports the hit.
    again = await collect(remote)
    assert again[-1].replica == last.replica
    assert again[-1].cached_tokens == 28
    assert remote.unfinished_requests() == 0


def test_info_says_it_routes_over_its_replicas(remote: RemoteEngine) -> None:
    assert remote.info.routes_by_affinity and remote.info.replicas == len(URLS)


async def test_max_tokens_ends_with_length(remote: RemoteEngine) -> None:
    deltas = await collect(remote, max_tokens=3)
    assert [d.finish_reason for d in deltas] == [None, None, "length"]


async def test_logprobs_keep_exactly_the_top_k(remote: RemoteEngine) -> None:
    deltas = await collect(remote, max_tokens=2, logprobs=2)
    for d in deltas:
        (position,) = d.logprobs
        assert position.token == d.text and position.logprob == -0.25
        assert [t.logprob for t in position.top] == [-0.25, -2.0]
    assert all(d.logprobs == () for d in await collect(remote, max_tokens=2))


async def test_placement_affinity_picks_the_replica(remote: RemoteEngine, replicas: Replicas) -> None:
    for url in (B, A, B):
        deltas = await collect(remote, placement=Placement(affinity=url))
        assert deltas[-1].replica == url and replicas.generates[-1] == url
    assert remote.router.by_url[B].routed[Reason.AFFINITY] == 2


async def test_unreachable_replica_retries_elsewhere_and_is_taken_out(remote: RemoteEngine, replicas: Replicas) -> None:
    replicas.down.add(A)
    deltas = await collect(remote, placement=Placement(affinity=A))
    assert deltas[-1].replica == B and deltas[-1].finish_reason == "stop"
    assert remote.router.by_url[B].routed[Reason.RETRY] == 1
    a = remote.router.by_url[A]
    assert not a.up and a.failures == 1 and "ConnectError" in (a.last_error or "")
    for i in range(3):
        assert (await collect(remote, prompt=[i] * 9))[-1].replica == B


async def test_broken_before_first_token_retries_without_taking_the_replica_out(
    remote: RemoteEngine, replicas: Replicas
) -> None:
    replicas.cut_after[A] = 0  # e.g. a pooled connection the replica had just closed
    deltas = await collect(remote, placement=Placement(affinity=A))
    assert deltas[-1].replica == B
    assert replicas.generates == [A, B]
    assert remote.router.by_url[A].up


async def test_failure_mid_stream_raises_and_takes_the_replica_out(remote: RemoteEngine, replicas: Replicas) -> None:
    replicas.cut_after[A] = 2
    seen: list[EngineDelta] = []
    with pytest.raises(EngineError, match="mid-stream") as info:
        async for d in remote.generate("r1", PROMPT, SamplingOptions(max_tokens=20), Placement(affinity=A)):
            seen.append(d)
    assert not isinstance(info.value, EngineRejected)
    assert [d.text for d in seen] == [" w0", " w1"]
    assert replicas.generates == [A]
    assert not remote.router.by_url[A].up
    assert remote.unfinished_requests() == 0


async def test_rejected_request_is_not_retried(remote: RemoteEngine, replicas: Replicas) -> None:
    with pytest.raises(EngineRejected, match="max_tokens"):
        await collect(remote, max_tokens=0)
    assert len(replicas.generates) == 1
    assert all(r.up for r in remote.router.replicas)


async def test_no_replica_up_is_an_engine_error(remote: RemoteEngine, replicas: Replicas) -> None:
    replicas.down.update(URLS)
    with pytest.raises(EngineError) as info:
        await collect(remote)
    assert not isinstance(info.value, EngineRejected)
    assert not await remote.healthy()


async def test_abort_releases_the_request_and_tells_the_replica(
    remote: RemoteEngine, sims: dict[str, SimReplica]
) -> None:
    stream = remote.generate("to-abort", PROMPT, SamplingOptions(max_tokens=20), Placement(affinity=A))
    first = await anext(stream)
    assert first.text == " w0" and remote.unfinished_requests() == 1
    await remote.abort("to-abort")
    assert remote.unfinished_requests() == 0
    async with asyncio.timeout(5):
        while sims[A].stats.aborted == 0:  # noqa: ASYNC110 - the abort is posted in the background
            await asyncio.sleep(0.01)
    await stream.aclose()
    assert remote.router.by_url[A].in_flight == 0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_probe_takes_out_and_readmits_with_backoff(replicas: Replicas, sims: dict[str, SimReplica]) -> None:
    clock = Clock()
    router = Router(URLS, backoff=Backoff(base=1.0, cap=8.0), clock=clock)
    engine = make_engine(replicas, router)
    try:
        await engine.probe()
        assert all(r.up for r in router.replicas)
        sims[A].healthy = False
        await engine.probe()
        a = router.by_url[A]
        assert a.up  # one bad answer from a busy replica is not an outage
        await engine.probe()
        assert not a.up and "503" in (a.last_error or "")
        assert (await collect(engine))[-1].replica == B
        clock.now += 1.0
        await engine.probe()  # due again, still failing: the wait doubles
        assert not a.up and a.failures == 2 and a.retry_at == 3.0
        sims[A].healthy = True
        replicas.down.add(A)  # the whole check fails while it is unreachable
        clock.now = 3.0
        await engine.probe()
        assert not a.up and a.failures == 3
        replicas.down.clear()
        await engine.probe()  # not due yet
        assert not a.up
        clock.now = 7.0
        await engine.probe()
        assert a.up and a.failures == 0
        replicas.down.add(A)  # a refused connection takes it out at once
        await engine.probe()
        assert not a.up and "ConnectError" in (a.last_error or "")
    finally:
        await engine.close()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (SimConfig(version="0.40.1"), "outside the tested range >=0.32,<0.33"),
        (SimConfig(tokens_only=True), "not --tokens-only"),
    ],
)
async def test_refuses_replicas_it_cannot_use(config: SimConfig, message: str) -> None:
    engine = make_engine(Replicas({url: SimReplica(config) for url in URLS}))
    try:
        await engine.probe()
        assert not await engine.healthy()
        assert all(message in (r.last_error or "") for r in engine.router.replicas)
    finally:
        await engine.close()


async def test_learns_context_and_block_size_from_the_replicas(remote: RemoteEngine) -> None:
    assert remote.info.max_model_len == 2048
    assert remote.router.index.block_size == 4


def test_sampling_params_carry_every_option() -> None:
    options = SamplingOptions(
        max_tokens=7,
        temperature=0.5,
        top_p=0.9,
        stop=("END",),
        logprobs=3,
        seed=11,
        constraint=Constraint(json={"type": "object"}),
        skip_special_tokens=False,
    )
    body = json.loads(wire.generate_body("r", [1, 2], options, Placement(cache_salt="tenant-salt")))
    assert body["cache_salt"] == "tenant-salt" and body["output_mode"] == "text" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["sampling_params"] == {
        "n": 1,
        "max_tokens": 7,
        "temperature": 0.5,
        "top_p": 0.9,
        "skip_special_tokens": False,
        "stop": ["END"],
        "logprobs": 4,
        "seed": 11,
        "structured_outputs": {"json": '{"type": "object"}'},
    }
    assert wire.sampling_params(SamplingOptions(max_tokens=1, logprobs=20))["logprobs"] == 20
    assert wire.sampling_params(SamplingOptions(max_tokens=1, logprobs=0))["logprobs"] == 0
    tag = wire.sampling_params(SamplingOptions(max_tokens=1, constraint=Constraint(structural_tag="{}")))
    assert tag["structured_outputs"] == {"structural_tag": "{}"}


@pytest.mark.parametrize(
    ("version", "ok"),
    [("0.32.0", True), ("0.32.1+cpu", True), ("0.32.0.dev12", True), ("0.31.9", False), ("0.33.0", False), ("", False)],
)
def test_version_range(version: str, ok: bool) -> None:
    assert wire.version_supported(version) is ok


def test_sse_lines_are_split_the_same_however_bytes_arrive() -> None:
    stream = b'data: {"a":1}\n\ndata: {"b":"x\\ny"}\n\ndata: [DONE]\n\n'
    expected = [b'{"a":1}', b'{"b":"x\\ny"}', b"[DONE]"]
    rng = random.Random(7)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(stream)), rng.randint(0, 8)))
        pieces = [stream[i:j] for i, j in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        lines = wire.SSELines()
        assert [p for piece in pieces for p in lines.feed(piece)] == expected
