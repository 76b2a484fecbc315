"""Keeps one engine serving: notices when its process dies, tells the layers above, and restarts it within bounds.

vLLM reports a dead engine core itself: a monitor thread watches the core process and, when it exits, marks the
client dead (`AsyncLLM.errored`), and the output handler fails every open request with `EngineDeadError`. This
wrapper polls that state, so a death with nothing in flight is noticed too, answers 503 with Retry-After while a
new engine starts, and gives up (the `on_fatal` callback, which makes the server exit non-zero for a process
supervisor) after `max_restarts` start attempts within `window_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from dataclasses import dataclass

from vresponses.engines.base import (
    NO_PLACEMENT,
    Engine,
    EngineDelta,
    EngineError,
    ModelInfo,
    Placement,
    SamplingOptions,
    Tokenizer,
)

log = logging.getLogger(__name__)

READY = "ready"
RESTARTING = "restarting"
FAILED = "failed"
CLOSED = "closed"


class EngineDied(EngineError):
    """The engine process died while this request was running."""


class EngineRestarting(EngineError):
    """The engine is being restarted after a failure (or could not be); retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """How hard to try: start attempts allowed per window (0: never restart), and the pause between attempts."""

    max_restarts: int = 3
    window_seconds: float = 600.0
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0
    poll_seconds: float = 0.5


class SupervisedEngine:
    """An Engine that survives the death of the engine it wraps by starting a new one."""

    @property
    def info(self) -> ModelInfo:
        """The running engine's model (a restarted engine serves the same model)."""
        return self._engine.info

    @property
    def current(self) -> Engine:
        """The engine running now (replaced by each restart)."""
        return self._engine

    @property
    def tokenizer(self) -> Tokenizer:
        """The running engine's tokenizer."""
        return self._engine.tokenizer

    def __init__(
        self,
        first: Engine,
        start: Callable[[], Engine],
        policy: RestartPolicy | None = None,
        started_in: float = 30.0,
    ) -> None:
        self.policy = policy or RestartPolicy()
        self.state = READY
        self.restarts = 0
        self._engine = first
        self._start = start
        self._start_seconds = started_in
        self._restarting_since = 0.0
        self._attempts: deque[float] = deque()
        self._owners: dict[str, Engine] = {}
        self._on_death: list[Callable[[str], None]] = []
        self._on_fatal: list[Callable[[str], None]] = []
        self._watcher: asyncio.Task[None] | None = None
        self._retired = False
        self._thread = StartThread()

    def on_death(self, callback: Callable[[str], None]) -> None:
        """Call back with the reason when the engine dies (before any restart)."""
        self._on_death.append(callback)

    def retire(self) -> None:
        """The server is stopping: a death from now on (its engine gets the same signal) is not restarted."""
        self._retired = True

    def on_fatal(self, callback: Callable[[str], None]) -> None:
        """Call back with the reason when the engine cannot be restarted within the policy."""
        self._on_fatal.append(callback)

    @property
    def available(self) -> bool:
        """Whether new requests can go to the engine now (no I/O: fit for every request's fast path)."""
        return self.state == READY

    @property
    def retry_after(self) -> int:
        """Seconds until the engine is expected back."""
        elapsed = time.monotonic() - self._restarting_since
        return max(1, round(self._start_seconds - elapsed)) if self.state == RESTARTING else 60

    def unavailable(self) -> EngineRestarting:
        """The error that answers a request while the engine cannot serve."""
        if self.state == RESTARTING:
            return EngineRestarting("The engine is restarting after a failure; retry shortly.", self.retry_after)
        return EngineRestarting("The engine has stopped and is not being restarted.", self.retry_after)

    def start(self) -> None:
        """Start watching the engine (in the running event loop)."""
        self._watcher = asyncio.create_task(self._watch(), name="engine supervisor")

    async def generate(
        self,
        request_id: str,
        prompt_token_ids: list[int],
        options: SamplingOptions,
        placement: Placement = NO_PLACEMENT,
    ) -> AsyncIterator[EngineDelta]:
        """The current engine's stream; a death mid-stream is EngineDied, a request while restarting 503s."""
        if self.state != READY:
            raise self.unavailable()
        engine = self._engine
        self._owners[request_id] = engine
        finished = False
        try:
            async for delta in engine.generate(request_id, prompt_token_ids, options, placement):
                finished = delta.finish_reason is not None
                yield delta
            if not finished and (engine is not self._engine or self.state != READY):
                raise EngineDied("The engine process died while generating this response.")
        except EngineError as exc:
            if isinstance(exc, EngineDied) or (engine is self._engine and await engine.healthy()):
                raise
            raise EngineDied("The engine process died while generating this response.") from exc
        finally:
            self._owners.pop(request_id, None)

    async def abort(self, request_id: str) -> None:
        """Abort on the engine that runs (or ran) the request; a restarted engine never saw it."""
        engine = self._owners.get(request_id, self._engine)
        if engine is self._engine and self.state == READY:
            await engine.abort(request_id)

    async def healthy(self) -> bool:
        """Ready and the engine itself reports healthy."""
        return self.state == READY and await self._engine.healthy()

    def unfinished_requests(self) -> int:
        """The current engine's unfinished requests (none while it is down)."""
        return self._engine.unfinished_requests() if self.state == READY else 0

    async def close(self) -> None:
        """Stop watching and release the engine."""
        previous, self.state = self.state, CLOSED
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        if previous == READY:
            await self._engine.close()

    async def _watch(self) -> None:
        while self.state == READY:
            await asyncio.sleep(self.policy.poll_seconds)
            if self.state == READY and not await self._engine.healthy():
                await self._recover("the engine process died")

    async def _recover(self, reason: str) -> None:
        self.state = RESTARTING
        self._restarting_since = time.monotonic()
        log.error("%s; failing its in-flight requests", reason)
        for callback in self._on_death:
            callback(reason)
        dead = self._engine
        for request_id, owner in list(self._owners.items()):
            if owner is dead:
                # vLLM has normally failed these already; an abort wakes any stream still waiting, whatever the engine.
                try:
                    await dead.abort(request_id)
                except Exception:
                    log.debug("abort of %s on the dead engine failed", request_id, exc_info=True)
        try:
            # vLLM's monitor thread has already shut the dead core down: this releases what is left, quickly.
            await dead.close()
        except Exception:
            log.warning("closing the dead engine failed", exc_info=True)
        delay = self.policy.backoff_seconds
        while self.state == RESTARTING:
            if self._retired:
                self.state = FAILED
                log.info("not restarting the engine: the server is stopping")
                return
            if not self._may_attempt():
                self._give_up(f"{reason}; {self.policy.max_restarts} restarts in {self.policy.window_seconds:.0f} s")
                return
            log.warning("restarting the engine in %.1f s", delay)
            await asyncio.sleep(delay)
            began = time.monotonic()
            try:
                engine = await self._thread.run(self._start)
            except Exception:
                log.exception("the engine failed to start")
                delay = min(delay * 2, self.policy.max_backoff_seconds)
                continue
            self._engine = engine
            self._start_seconds = time.monotonic() - began
            self.restarts += 1
            self.state = READY
            log.warning("the engine is back after %.1f s (restart %d)", self._start_seconds, self.restarts)
            self._watcher = asyncio.create_task(self._watch(), name="engine supervisor")

    def _may_attempt(self) -> bool:
        now = time.monotonic()
        while self._attempts and now - self._attempts[0] > self.policy.window_seconds:
            self._attempts.popleft()
        if len(self._attempts) >= self.policy.max_restarts:
            return False
        self._attempts.append(now)
        return True

    def _give_up(self, reason: str) -> None:
        self.state = FAILED
        log.critical("giving up on the engine: %s", reason)
        for callback in self._on_fatal:
            callback(reason)


class StartThread:
    """One daemon thread that starts engines for the life of the process.

    A child's parent-death signal follows the thread that started it, so this thread must live as long as the
    engines it starts (see lifeline.py); being a daemon, it never holds up the process's exit either: an engine
    still starting then dies with the process instead.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Engine], Future[Engine]]] = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="engine-start", daemon=True).start()

    def _serve(self) -> None:
        while True:
            start, done = self._jobs.get()
            if not done.set_running_or_notify_cancel():
                continue
            try:
                done.set_result(start())
            except BaseException as exc:
                done.set_exception(exc)

    async def run(self, start: Callable[[], Engine]) -> Engine:
        """Run `start` on the thread; an engine that finishes starting after the caller gave up is closed."""
        done: Future[Engine] = Future()
        self._jobs.put((start, done))
        try:
            return await asyncio.wrap_future(done)
        except asyncio.CancelledError:
            loop = asyncio.get_running_loop()
            done.add_done_callback(lambda f: _close_late(f, loop))
            raise


def _close_late(done: Future[Engine], loop: asyncio.AbstractEventLoop) -> None:
    if done.cancelled() or done.exception() is not None:
        return
    engine = done.result()
    # If the loop is gone the process is exiting, and the engine's processes die with it.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(lambda: loop.create_task(engine.close()))
