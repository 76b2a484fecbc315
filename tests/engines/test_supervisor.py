"""The engine supervisor on fake engines: death noticed, in-flight streams failed, bounded restarts on one thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from vresponses.engines.base import EngineError, SamplingOptions
from vresponses.engines.fake import FakeEngine
from vresponses.engines.supervisor import (
    FAILED,
    READY,
    RESTARTING,
    EngineDied,
    EngineRestarting,
    RestartPolicy,
    SupervisedEngine,
)

FAST = RestartPolicy(max_restarts=3, backoff_seconds=0.01, max_backoff_seconds=0.02, poll_seconds=0.01)


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


class Starts:
    """An engine factory that records each engine it made and the thread it ran on."""

    def __init__(self, fail: int = 0) -> None:
        self.engines: list[FakeEngine] = []
        self.threads: set[int] = set()
        self.fail = fail

    def __call__(self) -> FakeEngine:
        self.threads.add(threading.get_ident())
        if self.fail:
            self.fail -= 1
            raise RuntimeError("scripted start failure")
        engine = FakeEngine()
        self.engines.append(engine)
        return engine


async def drain(sup: SupervisedEngine, request_id: str) -> list[str]:
    return [d.text async for d in sup.generate(request_id, [1, 2], SamplingOptions(max_tokens=50))]


async def test_death_is_noticed_and_the_engine_restarts() -> None:
    first, starts = FakeEngine(), Starts()
    sup = SupervisedEngine(first, starts, FAST)
    deaths: list[str] = []
    sup.on_death(deaths.append)
    sup.start()
    try:
        assert await drain(sup, "r1") == ["ok"]
        first.alive = False
        await until(lambda: sup.state != READY)
        assert deaths and not await sup.healthy()
        await until(lambda: sup.state == READY)
        assert sup.restarts == 1 and len(starts.engines) == 1 and await sup.healthy()
        assert await drain(sup, "r2") == ["ok"]
        assert starts.engines[0].requests[0][0] == "r2"
    finally:
        await sup.close()


async def test_requests_while_restarting_are_503_with_retry_after() -> None:
    gate = threading.Event()
    first = FakeEngine()

    def slow_start() -> FakeEngine:
        gate.wait(5)
        return FakeEngine()

    sup = SupervisedEngine(first, slow_start, FAST, started_in=20)
    sup.start()
    try:
        first.alive = False
        await until(lambda: sup.state == RESTARTING)
        with pytest.raises(EngineRestarting) as info:
            await drain(sup, "r1")
        assert 1 <= info.value.retry_after <= 20
        assert not sup.available
        gate.set()
        await until(lambda: sup.state == READY)
    finally:
        gate.set()
        await sup.close()


async def test_a_stream_on_a_dying_engine_raises_engine_died() -> None:
    first = FakeEngine()
    first.enqueue(*"abcdefghij", delay=0.05)
    sup = SupervisedEngine(first, Starts(), FAST)
    sup.start()
    try:
        seen: list[str] = []
        with pytest.raises(EngineDied):
            async for delta in sup.generate("r1", [1], SamplingOptions(max_tokens=50)):
                seen.append(delta.text)
                if len(seen) == 2:
                    first.alive = False  # the supervisor aborts its requests; the stream must not end quietly
        assert seen == ["a", "b"] and "r1" in first.aborted
    finally:
        await sup.close()


async def test_an_engine_error_on_a_live_engine_passes_through() -> None:
    first = FakeEngine()
    first.enqueue("a", "b", fail_after=1)
    sup = SupervisedEngine(first, Starts(), FAST)
    with pytest.raises(EngineError) as info:
        await drain(sup, "r1")
    assert not isinstance(info.value, EngineDied) and sup.state == READY
    await sup.close()


async def test_restarts_are_bounded_then_fatal() -> None:
    first, starts = FakeEngine(), Starts(fail=10)
    sup = SupervisedEngine(first, starts, FAST)
    fatal: list[str] = []
    sup.on_fatal(fatal.append)
    sup.start()
    try:
        first.alive = False
        await until(lambda: sup.state == FAILED)
        assert len(fatal) == 1 and "3 restarts" in fatal[0]
        assert starts.fail == 10 - 3  # exactly max_restarts attempts
        with pytest.raises(EngineRestarting):
            await drain(sup, "r1")
    finally:
        await sup.close()


async def test_no_restarts_means_fatal_at_the_first_death() -> None:
    first, starts = FakeEngine(), Starts()
    sup = SupervisedEngine(first, starts, RestartPolicy(max_restarts=0, poll_seconds=0.01))
    fatal: list[str] = []
    sup.on_fatal(fatal.append)
    sup.start()
    try:
        first.alive = False
        await until(lambda: bool(fatal))
        assert not starts.engines
    finally:
        await sup.close()


async def test_every_restart_runs_on_the_same_long_lived_thread() -> None:
    # A child's parent-death signal follows the thread that started it: that thread must outlive the engine.
    first, starts = FakeEngine(), Starts(fail=1)
    sup = SupervisedEngine(first, starts, RestartPolicy(max_restarts=5, backoff_seconds=0.01, poll_seconds=0.01))
    sup.start()
    try:
        first.alive = False
        await until(lambda: sup.state == READY and sup.restarts == 1)
        starts.engines[0].alive = False
        await until(lambda: sup.restarts == 2)
        assert len(starts.threads) == 1 and threading.get_ident() not in starts.threads
    finally:
        await sup.close()


async def test_closing_mid_restart_does_not_wait_and_closes_the_late_engine() -> None:
    started, gate, late = threading.Event(), threading.Event(), FakeEngine()

    def slow_start() -> FakeEngine:
        started.set()
        gate.wait(5)
        return late

    first = FakeEngine()
    sup = SupervisedEngine(first, slow_start, FAST)
    sup.start()
    first.alive = False
    await until(started.is_set)
    async with asyncio.timeout(1):
        await sup.close()  # a shutdown must not sit out an engine start (tens of seconds for vLLM)
    gate.set()
    await until(lambda: not late.alive)


async def test_a_retired_supervisor_does_not_restart() -> None:
    first, starts = FakeEngine(), Starts()
    sup = SupervisedEngine(first, starts, FAST)
    fatal: list[str] = []
    sup.on_fatal(fatal.append)
    sup.start()
    try:
        sup.retire()
        first.alive = False
        await until(lambda: sup.state == FAILED)
        assert not starts.engines and not fatal  # stopping on purpose is not a fatal failure
    finally:
        await sup.close()
