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
from vresponses.api.routes import routes
from vresponses.api.state import State
from vresponses.engines.base import Engine, EngineError
from vresponses.errors import APIError
from vresponses.pipeline.jobs import Jobs, JobsConfig
from vresponses.pipeline.search import SearchConfig
from vresponses.pipeline.service import Responder, ServiceConfig
from vresponses.pipeline.tenants import Tenants
from vresponses.settings import Settings
from vresponses.store import make_store
from vresponses.store.base import Store, StoreError
from vresponses.websearch import SearchProvider

log = logging.getLogger(__name__)


def start_engine(settings: Settings) -> Engine:
    """Start the in-process vLLM engine for the configured model."""
    from vresponses.engines.vllm_local import VllmEngine

    assert settings.engine.model, "the CLI resolves the model before starting the engine"
    return VllmEngine.start(settings.engine)


def service_config(settings: Settings, search_provider: SearchProvider | None) -> ServiceConfig:
    """The pipeline's choices: parsers, and web search when a provider was made for --web-search."""
    search = None
    if search_provider is not None:
        search = SearchConfig(
            search_provider, max_searches=settings.web_search_max_calls, timeout=settings.web_search_timeout
        )
    return ServiceConfig(settings.tool_call_parser, settings.reasoning_parser, web_search=search)


def create_app(
    settings: Settings,
    engine_factory: Callable[[Settings], Engine] = start_engine,
    store: Store | None = None,
    jobs_config: JobsConfig | None = None,
    on_ready: Callable[[Engine], None] | None = None,
    search_provider: SearchProvider | None = None,
) -> Starlette:
    """The ASGI app; the engine and store start in its lifespan and stop with it, as does search_provider."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        the_store = store or make_store(settings.store)
        await the_store.open()
        engine = engine_factory(settings)
        config = service_config(settings, search_provider)
        responder = Responder(engine, the_store, config, await Tenants.open(the_store), settings.limits)
        jobs = Jobs(
            responder,
            jobs_config
            or JobsConfig(
                max_jobs=settings.max_background_jobs,
                max_jobs_per_tenant=settings.max_background_jobs_per_key,
                max_age_seconds=settings.retention_max_age_seconds,
                max_rows=settings.retention_max_rows,
                max_rows_per_tenant=settings.retention_max_rows_per_key,
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
            if search_provider is not None:
                await search_provider.aclose()

    # Known errors are answered by the exception middleware; Exception (a bug) also reaches the server's log.
    handled = (APIError, HTTPException, ValidationError, EngineError, StoreError, Exception)
    return Starlette(
        routes=routes(settings.dialect),
        lifespan=lifespan,
        exception_handlers={kind: errors.handler for kind in handled},
    )
