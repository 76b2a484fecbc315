"""create_app(settings): wires the engine, store and parsers into the routes for the app's lifetime."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from vresponses.api import errors
from vresponses.api.auth import Keys
from vresponses.api.routes import State, routes
from vresponses.engines.base import Engine, EngineError
from vresponses.errors import APIError
from vresponses.pipeline.jobs import Jobs, JobsConfig
from vresponses.pipeline.service import Responder, ServiceConfig
from vresponses.settings import Settings
from vresponses.store import make_store
from vresponses.store.base import Store, StoreError

log = logging.getLogger(__name__)


def start_engine(settings: Settings) -> Engine:
    """Start the in-process vLLM engine for the configured model, or connect to the configured replicas."""
    if settings.remote is not None:
        from vresponses.engines.remote import RemoteEngine

        return RemoteEngine.start(settings.remote)
    from vresponses.engines.vllm_local import VllmEngine

    assert settings.engine.model, "the CLI resolves the model before starting the engine"
    return VllmEngine.start(settings.engine)


def create_app(
    settings: Settings,
    engine_factory: Callable[[Settings], Engine] = start_engine,
    store: Store | None = None,
    jobs_config: JobsConfig | None = None,
    on_ready: Callable[[Engine], None] | None = None,
) -> Starlette:
    """The ASGI app; the engine and store start in its lifespan and stop with it."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        the_store = store or make_store(settings.store)
        await the_store.open()
        engine = engine_factory(settings)
        responder = Responder(engine, the_store, ServiceConfig(settings.tool_call_parser, settings.reasoning_parser))
        jobs = Jobs(
            responder,
            jobs_config
            or JobsConfig(
                max_jobs=settings.max_background_jobs,
                max_age_seconds=settings.retention_max_age_seconds,
                max_rows=settings.retention_max_rows,
            ),
        )
        app.state.vr = State(responder, jobs, Keys(settings.api_keys), settings.max_body_bytes)
        jobs.start()
        if on_ready is not None:
            on_ready(engine)
        try:
            yield
        finally:
            await jobs.close()
            await engine.close()
            await the_store.close()

    # Known errors are answered by the exception middleware; Exception (a bug) also reaches the server's log.
    handled = (APIError, HTTPException, ValidationError, EngineError, StoreError, Exception)
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={kind: errors.handler for kind in handled},
    )
