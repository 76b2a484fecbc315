"""Running the app under uvicorn: SIGTERM (or Ctrl-C) drains before exiting, SIGHUP re-reads the key file, and the
exit code says how it ended (0 after a drain, 1 when the engine could not be restarted, 3 when start-up failed).

uvicorn on its own stops listening at once on SIGTERM (new connections are refused, not answered 503), cancels
streams after its graceful timeout without an error event, and re-raises the signal, so the process ends by
SIGTERM rather than with status 0.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import socket
from types import FrameType

import uvicorn
from starlette.applications import Starlette

from vresponses.api.lifecycle import STARTING, STOPPING, Lifecycle

STARTUP_FAILED = 3


class Server(uvicorn.Server):
    """uvicorn's server with the app's lifecycle in charge of stopping."""

    def __init__(self, config: uvicorn.Config, lifecycle: Lifecycle) -> None:
        super().__init__(config)
        self.lifecycle = lifecycle
        lifecycle.request_exit = self._exit
        self._loop: asyncio.AbstractEventLoop | None = None

    def _exit(self) -> None:
        self.should_exit = True

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        """Serve; SIGHUP asks the lifecycle to re-read the key file."""
        self._loop = loop = asyncio.get_running_loop()
        previous = signal.signal(signal.SIGHUP, lambda *_: loop.call_soon_threadsafe(self.lifecycle.reload_keys))
        try:
            await super().serve(sockets)
        finally:
            signal.signal(signal.SIGHUP, previous)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start the app (engine, store), then hide everything it allocated from the garbage collector."""
        await super().startup(sockets)
        freeze_heap()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """SIGTERM/SIGINT: drain once serving (a second signal cuts the drain short); before that, just stop."""
        if sig not in (signal.SIGTERM, signal.SIGINT) or self._loop is None:
            super().handle_exit(sig, frame)
            return
        if self.lifecycle.state == STARTING:
            # Not serving yet: nothing to drain. Not recorded as captured, so the exit status stays 0.
            self.should_exit = True
        elif self.lifecycle.state == STOPPING:
            self.force_exit = True  # drained already and still waiting on connections: stop waiting
        else:
            self._loop.call_soon_threadsafe(self.lifecycle.begin_drain)


def freeze_heap() -> None:
    """Move every object alive now out of the collector's sight, as vLLM's own server does once it has started."""
    # The process holds ~700k long-lived objects (torch, transformers, the tokenizer); a full collection walks them all
    # and stopped the event loop for ~0.4 s here (more on a busy machine), stalling every stream, /health and 429.
    gc.collect()
    gc.freeze()


def serve(app: Starlette, host: str, port: int, log_level: str = "info") -> int:
    """Serve `app` until it is stopped; return the process exit code."""
    lifecycle: Lifecycle = app.state.lifecycle
    # The drain decides how long streams may run; afterwards uvicorn only waits for their last bytes.
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=10)
    server = Server(config, lifecycle)
    server.run()
    if not server.started:
        return STARTUP_FAILED
    return lifecycle.exit_code
