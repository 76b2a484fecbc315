"""Prometheus gauges read at scrape time."""

from __future__ import annotations

from typing import Any

from prometheus_client import Gauge

from vresponses.api import replicas

ENGINE_UNFINISHED = Gauge("vresponses_engine_unfinished_requests", "Requests the engine is still working on")
BACKGROUND_JOBS = Gauge("vresponses_background_jobs", "Background responses running in this process")


def observe(state: Any) -> None:
    """Refresh the gauges from the live state."""
    ENGINE_UNFINISHED.set(state.responder.engine.unfinished_requests())
    BACKGROUND_JOBS.set(len(state.jobs.tasks))
    replicas.observe(state.responder.engine)
