"""create_app(settings): wires the engine, store and parsers into the routes for the app's lifetime."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from vresponses.api import errors
from vresponses.api.gate import Gate
from vresponses.api.keys import KeyFileWatcher, KeySources
from vresponses.api.lifecycle import Lifecycle, Parts
from vresponses.api.routes import routes
from vresponses.api.state import State
from vresponses.engines.base import Engine, EngineError
from vresponses.engines.supervisor import EngineDied, RestartPolicy, SupervisedEngine
from vresponses.errors import APIError
from vresponses.pipeline.admission import Admission
from vresponses.pipeline.jobs import Jobs, JobsConfig
from vresponses.pipeline.ratelimit import KeyLimiter
from vresponses.pipeline.search import SearchConfig
from vresponses.pipeline.service import Responder, ServiceConfig
from vresponses.pipeline.tenants import Tenants
from vresponses.settings import Settings
from vresponses.store import make_store
from vresponses.store.base import Store, StoreError
from vresponses.websearch import SearchProvider

log = logging.getLogger(__name__)


def start_engine(settings: Settings) -> Engine:
    """Start the in-process vLLM engine (its processes die with this one and run below it in CPU priority), or
    connect to the configured replicas."""
    if settings.remote is not None:
        from vresponses.engines.remote import RemoteEngine

        return RemoteEngine.start(settings.remote)
    from vresponses.engines import lifeline, priority
    from vresponses.engines.vllm_local import VllmEngine

    assert settings.engine.model, "the CLI resolves the model before starting the engine"
    lifeline.install()
    priority.install(settings.engine.nice)
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
    """The ASGI app; engine, store and search_provider start in its lifespan and stop with it.

    `app.state.lifecycle` drains it.
    """
    lifecycle = Lifecycle(settings.drain_timeout)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        the_store = store or make_store(settings.store)
        await the_store.open()
        sources = KeySources(settings.api_keys, settings.api_key_file)
        keys = sources.load()
        supervisor, admission = _engine(settings, engine_factory, lifecycle)
        config = service_config(settings, search_provider)
        responder = Responder(admission, the_store, config, await Tenants.open(the_store), settings.limits)
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
        app.state.vr = State(responder, jobs, keys, settings.max_body_bytes)
        watcher = KeyFileWatcher(sources, keys) if settings.api_key_file else None
        limiter = KeyLimiter(settings.key_limits)
        lifecycle.serving(Parts(admission, supervisor, jobs, keys, limiter, watcher))
        jobs.start()
        if settings.remote is None:
            # Replicas fail and return one by one, and the remote engine routes around them itself: nothing to restart.
            supervisor.start()
        if watcher is not None:
            watcher.start()
        if on_ready is not None:
            on_ready(supervisor)
        try:
            yield
        finally:
            if watcher is not None:
                await watcher.close()
            await jobs.close()
            await admission.close()
            await the_store.close()
            if search_provider is not None:
                await search_provider.aclose()

    # Known errors are answered by the exception middleware; Exception (a bug) also reaches the server's log.
    # A task group around a request (the disconnect watcher) raises its error inside an ExceptionGroup.
    handled = (APIError, HTTPException, ValidationError, EngineError, StoreError, ExceptionGroup, Exception)
    app = Starlette(
        routes=routes(settings.dialect),
        lifespan=lifespan,
        middleware=[Middleware(Gate)],
        exception_handlers={kind: errors.handler for kind in handled},
    )
    app.state.lifecycle = lifecycle
    return app


def _engine(
    settings: Settings, engine_factory: Callable[[Settings], Engine], lifecycle: Lifecycle
) -> tuple[SupervisedEngine, Admission]:
    """Start the engine under a supervisor (restarts) behind admission (bounds); a fatal failure ends the server."""
    began = time.monotonic()
    first = engine_factory(settings)
    supervisor = SupervisedEngine(
        first,
        lambda: engine_factory(settings),
        RestartPolicy(max_restarts=settings.engine_restarts),
        started_in=time.monotonic() - began,
    )
    admission = Admission(supervisor, settings.admission)
    log.info(
        "admission: up to %d requests and %d queued prompt tokens in the engine",
        admission.max_requests,
        admission.max_queued_prompt_tokens,
    )
    supervisor.on_death(lambda reason: _fail_in_flight(admission, reason))
    supervisor.on_fatal(lifecycle.fatal)
    return supervisor, admission


def _fail_in_flight(admission: Admission, reason: str) -> None:
    # vLLM fails its open requests itself when the core dies; this makes sure, whatever the engine, within a step.
    stopped = admission.fail_all(EngineDied("The engine process died while generating this response."))
    if stopped:
        log.warning("%s: stopped %d requests in flight", reason, stopped)
