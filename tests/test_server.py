"""The process runner around the app: what it does once the app has started."""

from __future__ import annotations

import asyncio
import gc

import uvicorn

from tests.api.conftest import KEY
from vresponses.app import create_app
from vresponses.engines.fake import FakeEngine
from vresponses.server import Server
from vresponses.settings import Settings
from vresponses.store.memory import MemoryStore


def test_start_up_hides_the_start_up_heap_from_the_collector() -> None:
    app = create_app(Settings(api_keys=(KEY,)), engine_factory=lambda _: FakeEngine(), store=MemoryStore())
    server = Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"), app.state.lifecycle)

    async def start_and_stop() -> int:
        serving = asyncio.create_task(server.serve())
        try:
            for _ in range(3000):  # uvicorn says it has started only through this flag
                if server.started:
                    return gc.get_freeze_count()
                await asyncio.sleep(0.01)
            raise AssertionError("the server did not start")
        finally:
            server.should_exit = True
            await serving

    gc.unfreeze()
    try:
        # A full collection then walks only what serving allocated, not the engine's and tokenizer's start-up objects.
        assert asyncio.run(start_and_stop()) > 1000
    finally:
        gc.unfreeze()
