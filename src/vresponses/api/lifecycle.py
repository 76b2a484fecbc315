"""The server's life after start-up: serving, draining when asked to stop, and how it ends (its exit code).

A drain stops admitting (every new request, /health included, answers 503 so load balancers move away), lets what
is in flight finish until the drain timeout, then stops the rest with an error (streams get an error event,
waiting clients a 503, background responses are stored as failed with the reason), and asks the server to exit.
An engine that cannot be restarted ends the server the same way, with exit code 1 for a process supervisor.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from vresponses.api.auth import Keys
from vresponses.api.keys import KeyFileWatcher
from vresponses.engines.supervisor import SupervisedEngine
from vresponses.errors import Unavailable
from vresponses.pipeline.admission import Admission
from vresponses.pipeline.jobs import Jobs
from vresponses.pipeline.ratelimit import KeyLimiter

log = logging.getLogger(__name__)

STARTING = "starting"
SERVING = "serving"
DRAINING = "draining"
STOPPING = "stopping"

# After the drain timeout, how long stopped streams get to deliver their error event before the server closes.
_FLUSH_SECONDS = 5.0


@dataclass
class Parts:
    """What the lifespan built: the pieces a drain and the request gate act on."""

    admission: Admission
    supervisor: SupervisedEngine
    jobs: Jobs
    keys: Keys
    limiter: KeyLimiter
    watcher: KeyFileWatcher | None = None


class Lifecycle:
    """Where the server stands; `drain()` ends it gracefully, `fatal()` ends it with exit code 1."""

    def __init__(self, drain_timeout: float = 30.0) -> None:
        self.drain_timeout = drain_timeout
        self.state = STARTING
        self.exit_code = 0
        # HTTP requests being answered now (streams until their last byte): counted by the gate.
        self.active = 0
        self.parts: Parts | None = None
        # Set by the server that runs the app: makes it stop listening and exit.
        self.request_exit: Callable[[], None] | None = None
        self._deadline = 0.0
        self._drain: asyncio.Task[None] | None = None

    @property
    def closing(self) -> bool:
        """Whether new requests are refused."""
        return self.state in (DRAINING, STOPPING)

    def serving(self, parts: Parts) -> None:
        """Start-up finished: accept requests."""
        self.parts = parts
        self.state = SERVING

    def busy(self) -> int:
        """Requests, streams and background responses still in flight."""
        if self.parts is None:
            return self.active
        return self.active + len(self.parts.jobs.tasks) + self.parts.admission.load.requests

    def begin_drain(self, grace: float | None = None) -> None:
        """Start draining (from a signal handler's callback); a second call cuts the drain short."""
        if self._drain is not None:
            self._deadline = 0.0
            log.warning("stopping now: what is still in flight ends with an error")
            return
        self._drain = asyncio.get_running_loop().create_task(self.drain(grace), name="drain")

    async def drain(self, grace: float | None = None) -> None:
        """Refuse new work, wait for in-flight work up to the grace period, stop the rest, then ask to exit."""
        timeout = self.drain_timeout if grace is None else grace
        self.state = DRAINING
        if self.parts is not None:
            # A signal to the process group reaches the engine too: its death now is no reason to start another.
            self.parts.supervisor.retire()
        self._deadline = time.monotonic() + timeout
        jobs = len(self.parts.jobs.tasks) if self.parts is not None else 0
        log.warning(
            "draining for up to %g s: %d requests being answered, %d background responses (signal again to stop now)",
            timeout,
            self.active,
            jobs,
        )
        # Polled: the work is counted in three places (gate, admission, jobs) that know nothing of a drain.
        while self.busy() and time.monotonic() < self._deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if self.busy() and self.parts is not None:
            stopped = self.parts.admission.fail_all(
                Unavailable(
                    f"The server shut down before this response finished (drain timeout {timeout:g} s, "
                    "--drain-timeout).",
                    code="server_shutdown",
                )
            )
            log.warning("drain timeout: stopped %d requests", stopped)
            flush_until = time.monotonic() + _FLUSH_SECONDS
            while self.busy() and time.monotonic() < flush_until:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        self.state = STOPPING
        log.info("drained; stopping")
        if self.request_exit is not None:
            self.request_exit()

    def fatal(self, reason: str) -> None:
        """The engine is gone for good: stop everything and exit non-zero."""
        self.exit_code = 1
        log.critical("stopping the server (exit code 1) so a process supervisor can restart it: %s", reason)
        if self.state == SERVING or self._drain is None:
            self.begin_drain(grace=0.0)

    def reload_keys(self) -> None:
        """Re-read the key file now (SIGHUP)."""
        if self.parts is not None and self.parts.watcher is not None:
            self.parts.watcher.reload()
