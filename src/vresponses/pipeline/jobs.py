"""Background responses: bounded in-process tasks whose rows hold a lease, so a dead process's work is found."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

from vresponses.errors import TooManyRequests
from vresponses.pipeline.events import Event
from vresponses.pipeline.service import Prepared, Responder
from vresponses.status import Status
from vresponses.store.base import StoreError

log = logging.getLogger(__name__)


class EventLog:
    """A running job's events so far, which any number of readers can follow from the start."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.done = False
        self._changed = asyncio.Event()

    def add(self, event: Event) -> None:
        """Record the next event and wake the readers."""
        self.events.append(event)
        self._wake()

    def close(self) -> None:
        """No more events will come."""
        self.done = True
        self._wake()

    def _wake(self) -> None:
        # Readers wait on the event that was current when they looked; a fresh one serves the next wait.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def follow(self) -> AsyncIterator[Event]:
        """Every event from the first, then each new one as it comes, until the job ends."""
        seen = 0
        while True:
            while seen < len(self.events):
                yield self.events[seen]
                seen += 1
            if self.done:
                return
            await self._changed.wait()


@dataclass(frozen=True, slots=True)
class JobsConfig:
    """Bounds and timings for background work and retention."""

    max_jobs: int = 16
    # One key's background responses may hold at most this many of the max_jobs slots.
    max_jobs_per_tenant: int = 8
    lease_seconds: float = 15.0
    tick_seconds: float = 2.0
    max_age_seconds: float | None = None
    max_rows: int | None = None
    # One key's stored responses beyond this are pruned (its oldest first), whatever other keys store.
    max_rows_per_tenant: int | None = None
    prune_every_seconds: float = 60.0


class Jobs:
    """Runs background responses, renews their leases, expires dead ones and enforces retention."""

    def __init__(self, responder: Responder, config: JobsConfig) -> None:
        self.responder = responder
        self.store = responder.store
        self.config = config
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.logs: dict[str, EventLog] = {}
        # Slots held per tenant, taken before the first await of submit(): a burst cannot overshoot the caps.
        self._held: Counter[str] = Counter()
        self._maintainer: asyncio.Task[None] | None = None
        self._last_prune = -float("inf")

    async def submit(self, prepared: Prepared) -> None:
        """Store the queued row and start the work; 429 when max_jobs, or the tenant's share, are running."""
        tenant = prepared.tenant
        held = self._held.total()
        if held >= self.config.max_jobs:
            raise TooManyRequests(f"{held} background responses are already running (limit {self.config.max_jobs}).")
        if self._held[tenant] >= self.config.max_jobs_per_tenant:
            raise TooManyRequests(
                f"{self._held[tenant]} of this key's background responses are already running "
                f"(limit {self.config.max_jobs_per_tenant} per key)."
            )
        self._held[tenant] += 1
        response_id = prepared.response.id
        events_log = EventLog()
        try:
            row = self.responder.row(prepared, prepared.response)
            await self.store.insert(row, lease_seconds=self.config.lease_seconds)
            task = asyncio.create_task(self._work(prepared, events_log), name=f"background {response_id}")
        except BaseException:
            self._release(tenant)
            raise
        self.tasks[response_id] = task
        self.logs[response_id] = events_log
        task.add_done_callback(lambda _: self._done(response_id, tenant))

    def _done(self, response_id: str, tenant: str) -> None:
        self.tasks.pop(response_id, None)
        log_ = self.logs.pop(response_id, None)
        if log_ is not None:
            log_.close()
        self._release(tenant)

    def _release(self, tenant: str) -> None:
        self._held[tenant] -= 1
        if self._held[tenant] <= 0:
            del self._held[tenant]

    async def _work(self, prepared: Prepared, events_log: EventLog) -> None:
        # run() stores the result, or on cancel/failure what was generated with that status.
        prepared.on_interrupt = Status.CANCELLED
        try:
            prepared.response = prepared.response.with_status(Status.IN_PROGRESS)
            await self.store.finish(self.responder.row(prepared, prepared.response))
            async with aclosing(self.responder.run(prepared)) as events:
                async for event in events:
                    events_log.add(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background response %s failed", prepared.response.id)

    async def cancel_local(self, response_id: str) -> bool:
        """Cancel a job running in this process and wait for its row to be written; False if not here."""
        task = self.tasks.get(response_id)
        if task is None:
            return False
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return True

    def start(self) -> None:
        """Start the maintenance loop."""
        self._maintainer = asyncio.create_task(self._maintain(), name="jobs maintenance")

    async def close(self) -> None:
        """Stop maintenance and cancel running jobs (their rows are written as cancelled)."""
        if self._maintainer is not None:
            self._maintainer.cancel()
            await asyncio.gather(self._maintainer, return_exceptions=True)
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def tick(self) -> None:
        """One maintenance pass: renew leases, act on remote cancels, expire dead rows, prune.

        Leases are measured by the store's clock, never this process's, so clock skew between processes
        cannot fail another process's live jobs.
        """
        if self.tasks:
            cancelled = await self.store.renew_leases(list(self.tasks), self.config.lease_seconds)
            for response_id in cancelled:
                await self.cancel_local(response_id)
        expired = await self.store.expire_leases()
        if expired:
            log.warning("marked %d background responses of a dead process as failed", expired)
        now = time.monotonic()
        if now - self._last_prune >= self.config.prune_every_seconds:
            self._last_prune = now
            c = self.config
            older = time.time() - c.max_age_seconds if c.max_age_seconds else None
            if older is not None or c.max_rows is not None or c.max_rows_per_tenant is not None:
                pruned = await self.store.prune(older, c.max_rows, c.max_rows_per_tenant)
                if pruned:
                    log.info("retention removed %d stored responses", pruned)

    async def _maintain(self) -> None:
        while True:
            try:
                await self.tick()
            except StoreError:
                log.exception("store maintenance failed; retrying")
            await asyncio.sleep(self.config.tick_seconds)
