"""Background responses: bounded in-process tasks whose rows hold a lease, so a dead process's work is found."""

from __future__ import annotations

import asyncio
import logging
import time
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
    lease_seconds: float = 15.0
    tick_seconds: float = 2.0
    max_age_seconds: float | None = None
    max_rows: int | None = None
    prune_every_seconds: float = 60.0


class Jobs:
    """Runs background responses, renews their leases, expires dead ones and enforces retention."""

    def __init__(self, responder: Responder, config: JobsConfig) -> None:
        self.responder = responder
        self.store = responder.store
        self.config = config
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.logs: dict[str, EventLog] = {}
        self._maintainer: asyncio.Task[None] | None = None
        self._last_prune = 0.0

    async def submit(self, prepared: Prepared) -> None:
        """Store the queued row and start the work; 429 when max_jobs are already running."""
        if len(self.tasks) >= self.config.max_jobs:
            raise TooManyRequests(
                f"{len(self.tasks)} background responses are already running (limit {self.config.max_jobs})."
            )
        row = self.responder.row(prepared, prepared.response)
        await self.store.insert(row, lease_until=time.time() + self.config.lease_seconds)
        response_id = prepared.response.id
        log_ = self.logs[response_id] = EventLog()
        task = asyncio.create_task(self._work(prepared, log_), name=f"background {response_id}")
        self.tasks[response_id] = task

        def _ended(_: object) -> None:
            self.tasks.pop(response_id, None)
            self.logs.pop(response_id, None)
            log_.close()

        task.add_done_callback(_ended)

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
        """One maintenance pass: renew leases, act on remote cancels, expire dead rows, prune."""
        now = time.time()
        if self.tasks:
            cancelled = await self.store.renew_leases(list(self.tasks), now + self.config.lease_seconds)
            for response_id in cancelled:
                await self.cancel_local(response_id)
        expired = await self.store.expire_leases(now)
        if expired:
            log.warning("marked %d background responses of a dead process as failed", expired)
        if now - self._last_prune >= self.config.prune_every_seconds:
            self._last_prune = now
            older = now - self.config.max_age_seconds if self.config.max_age_seconds else None
            if older is not None or self.config.max_rows is not None:
                pruned = await self.store.prune(older, self.config.max_rows)
                if pruned:
                    log.info("retention removed %d stored responses", pruned)

    async def _maintain(self) -> None:
        while True:
            try:
                await self.tick()
            except StoreError:
                log.exception("store maintenance failed; retrying")
            await asyncio.sleep(self.config.tick_seconds)
