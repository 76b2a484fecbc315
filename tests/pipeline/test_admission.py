"""Admission on the fake engine: bounds by requests and queued prompt tokens, per-request limits, stopping requests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from vresponses.engines.base import EngineError, EngineRejected, ModelInfo, SamplingOptions
from vresponses.engines.fake import FakeEngine
from vresponses.errors import InvalidRequest, RequestTimeout, TooManyRequests, Unavailable
from vresponses.pipeline.admission import Admission, AdmissionLimits, reason

OPTS = SamplingOptions(max_tokens=100)


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


async def consume(adm: Admission, request_id: str, prompt: int = 10) -> list[str]:
    return [d.text async for d in adm.generate(request_id, list(range(prompt)), OPTS)]


def test_defaults_fit_the_engine() -> None:
    info = ModelInfo(name="m", max_model_len=4096, max_num_seqs=8, kv_cache_tokens=20000)
    adm = Admission(FakeEngine(info=info), AdmissionLimits())
    assert (adm.max_requests, adm.max_queued_prompt_tokens) == (16, 20000)
    bare = Admission(FakeEngine(), AdmissionLimits())
    assert (bare.max_requests, bare.max_queued_prompt_tokens) == (64, 8 * 4096)
    # Behind a remote engine, each replica adds its share.
    eight = Admission(FakeEngine(info=ModelInfo(name="m", max_model_len=4096, replicas=8)), AdmissionLimits())
    assert (eight.max_requests, eight.max_queued_prompt_tokens) == (8 * 64, 8 * 8 * 4096)


async def test_request_bound_refuses_with_the_limit_named() -> None:
    fake = FakeEngine()
    fake.enqueue(*"abcdef", delay=0.05)
    adm = Admission(fake, AdmissionLimits(max_requests=1))
    adm.admit(10)
    task = asyncio.create_task(consume(adm, "r1"))
    await until(lambda: adm.load.requests == 1)
    with pytest.raises(TooManyRequests) as info:
        adm.has_room()
    assert "--max-concurrent-requests" in info.value.message and info.value.retry_after == 1
    with pytest.raises(TooManyRequests):
        adm.admit(10)
    adm.admit(10, background=True)  # background responses are queued, never refused for load
    assert await task == list("abcdef")
    assert adm.load.requests == 0 and adm.load.refused == {"requests": 2}
    adm.has_room()


async def test_queued_prompt_tokens_count_until_the_first_token() -> None:
    fake = FakeEngine()
    fake.enqueue("a", "b", delay=0.2)
    adm = Admission(fake, AdmissionLimits(max_queued_prompt_tokens=100))
    task = asyncio.create_task(consume(adm, "r1", prompt=80))
    await until(lambda: adm.load.queued_prompt_tokens == 80)
    with pytest.raises(TooManyRequests) as info:
        adm.admit(30)
    assert "--max-queued-prompt-tokens" in info.value.message
    adm.admit(20)
    await until(lambda: adm.load.queued_prompt_tokens == 0)  # prefill done: the first token arrived
    assert adm.load.requests == 1
    adm.admit(90)
    await task
    adm.admit(500)  # with nothing queued, one prompt beyond the bound is still served


def test_prompt_limit_per_request_is_a_400_naming_it() -> None:
    adm = Admission(FakeEngine(), AdmissionLimits(max_prompt_tokens=50))
    adm.admit(50)
    with pytest.raises(InvalidRequest) as info:
        adm.admit(51, background=True)
    assert "--max-prompt-tokens" in info.value.message and info.value.param == "input"


async def test_wall_clock_limit_stops_the_request_in_the_engine() -> None:
    fake = FakeEngine()
    fake.enqueue(*"abcdefghij", delay=0.05)
    adm = Admission(fake, AdmissionLimits(request_timeout=0.12))
    seen: list[str] = []
    with pytest.raises(RequestTimeout) as info:
        async for delta in adm.generate("r1", [1], OPTS):
            seen.append(delta.text)
    assert "--request-timeout" in info.value.message and info.value.status == 504
    assert 1 <= len(seen) < 10 and "r1" in fake.aborted
    assert adm.load.requests == 0 and adm.load.queued_prompt_tokens == 0


async def test_fail_all_ends_every_stream_with_the_reason() -> None:
    fake = FakeEngine()
    for _ in range(3):
        fake.enqueue(*"abcdefghij", delay=0.05)
    adm = Admission(fake, AdmissionLimits())
    tasks = [asyncio.create_task(consume(adm, f"r{i}")) for i in range(3)]
    await until(lambda: adm.load.requests == 3 and adm.load.queued_prompt_tokens == 0)
    stop = Unavailable("stopping")
    assert adm.fail_all(stop) == 3
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(r is stop for r in results)
    assert sorted(fake.aborted) == ["r0", "r1", "r2"] and adm.load.requests == 0


async def test_an_engine_error_keeps_its_own_type() -> None:
    fake = FakeEngine()
    fake.enqueue("a", "b", fail_after=1)
    adm = Admission(fake, AdmissionLimits())
    with pytest.raises(EngineError):
        await consume(adm, "r1")
    assert adm.load.requests == 0


def test_reason_keeps_client_messages_and_hides_internals() -> None:
    assert reason(Unavailable("The server shut down.")) == "The server shut down."
    assert reason(EngineRejected("bad grammar")) == "bad grammar"
    assert reason(KeyError("/secret/path")) == "KeyError"
