"""Background-job caps: global and per tenant, and a burst cannot overshoot them."""

from __future__ import annotations

import asyncio

import pytest

from vresponses.engines.fake import FakeEngine
from vresponses.errors import TooManyRequests
from vresponses.pipeline.items import Message
from vresponses.pipeline.jobs import Jobs, JobsConfig
from vresponses.pipeline.request import ResponseRequest
from vresponses.pipeline.service import Responder, ServiceConfig
from vresponses.pipeline.tenants import Tenants
from vresponses.store.base import StoredResponse
from vresponses.store.memory import MemoryStore


class SlowStore(MemoryStore):
    """Inserts yield to the loop first, as a real database round trip does."""

    async def insert(self, row: StoredResponse, lease_seconds: float | None = None) -> None:
        await asyncio.sleep(0.01)
        await super().insert(row, lease_seconds)


async def _jobs(max_jobs: int, per_tenant: int) -> tuple[Jobs, FakeEngine]:
    fake = FakeEngine()
    store = SlowStore()
    await store.open()
    responder = Responder(fake, store, ServiceConfig(), await Tenants.open(store))
    return Jobs(responder, JobsConfig(max_jobs=max_jobs, max_jobs_per_tenant=per_tenant)), fake


async def _submit(jobs: Jobs, tenant: str) -> bool:
    items = (Message(role="user", content="hi"),)
    prepared = await jobs.responder.prepare(
        ResponseRequest(model="fake-model", items=items, background=True, tenant=tenant)
    )
    try:
        await jobs.submit(prepared)
    except TooManyRequests:
        return False
    return True


@pytest.mark.parametrize(("tenants", "accepted"), [(["a"] * 10, 3), ([f"t{i}" for i in range(10)], 5)])
async def test_a_burst_never_overshoots_the_caps(tenants: list[str], accepted: int) -> None:
    jobs, fake = await _jobs(max_jobs=5, per_tenant=3)
    for _ in tenants:
        fake.enqueue("slow", delay=1.0)
    results = await asyncio.gather(*(_submit(jobs, t) for t in tenants))
    assert sum(results) == accepted
    assert len(jobs.tasks) == accepted
    await jobs.close()


async def test_one_tenant_at_its_cap_leaves_room_for_others() -> None:
    jobs, fake = await _jobs(max_jobs=4, per_tenant=2)
    for _ in range(4):
        fake.enqueue("slow", delay=1.0)
    assert [await _submit(jobs, "a") for _ in range(3)] == [True, True, False]
    assert [await _submit(jobs, "b") for _ in range(2)] == [True, True]
    assert not await _submit(jobs, "c")  # the global cap
    await jobs.close()
    assert await _submit(jobs, "a")  # slots come back when jobs end
    await jobs.close()
