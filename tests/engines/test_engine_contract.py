"""One contract for every engine: the scripted fake and the remote engine on simulated replicas.

(The in-process vLLM engine is held to the same behaviour end to end, in tests/e2e.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from tests.engines.replicas import Replicas, make_engine
from vresponses.engines.base import Engine, EngineDelta, SamplingOptions
from vresponses.engines.fake import FakeEngine

PROMPT = list(range(40, 72))


@dataclass
class Subject:
    engine: Engine
    # Arrange for the next completion to be longer than `n` tokens when the engine is scripted.
    expect_long: Callable[[int], None]


@pytest.fixture(params=["fake", "remote"])
async def subject(request: pytest.FixtureRequest, replicas: Replicas) -> AsyncIterator[Subject]:
    if request.param == "fake":
        fake = FakeEngine()

        def script(n: int) -> None:
            fake.enqueue(*(f" t{i}" for i in range(n + 3)))

        yield Subject(fake, script)
        return
    remote = make_engine(replicas)
    await remote.probe()
    yield Subject(remote, lambda n: None)
    await remote.close()


async def run(engine: Engine, request_id: str, options: SamplingOptions) -> list[EngineDelta]:
    return [d async for d in engine.generate(request_id, PROMPT, options)]


async def test_one_finish_reason_on_the_last_delta(subject: Subject) -> None:
    deltas = await run(subject.engine, "c1", SamplingOptions(max_tokens=64))
    assert deltas
    assert [d.finish_reason is not None for d in deltas] == [False] * (len(deltas) - 1) + [True]
    assert deltas[-1].finish_reason == "stop"
    assert max(d.prompt_tokens for d in deltas) == len(PROMPT)
    assert subject.engine.unfinished_requests() == 0
    assert await subject.engine.healthy()


async def test_max_tokens_bounds_the_output(subject: Subject) -> None:
    subject.expect_long(2)
    deltas = await run(subject.engine, "c2", SamplingOptions(max_tokens=2))
    assert sum(len(d.token_ids) for d in deltas) == 2
    assert deltas[-1].finish_reason == "length"


async def test_logprobs_only_when_asked_one_per_token(subject: Subject) -> None:
    for k in (None, 1):
        deltas = await run(subject.engine, f"c3-{k}", SamplingOptions(max_tokens=64, logprobs=k))
        for d in deltas:
            assert len(d.logprobs) == (len(d.token_ids) if k is not None else 0)


async def test_abort_leaves_nothing_unfinished(subject: Subject) -> None:
    subject.expect_long(3)
    stream = subject.engine.generate("c4", PROMPT, SamplingOptions(max_tokens=64))
    await anext(stream)
    assert subject.engine.unfinished_requests() == 1
    await subject.engine.abort("c4")
    await stream.aclose()  # type: ignore[attr-defined]
    assert subject.engine.unfinished_requests() == 0
    await subject.engine.abort("c4")  # a no-op now
