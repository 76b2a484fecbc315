"""Prometheus gauges read at scrape time (never labelled by key or tenant)."""

from __future__ import annotations

from typing import Any

from prometheus_client import Gauge

from vresponses.api import replicas
from vresponses.engines.supervisor import READY, SupervisedEngine
from vresponses.pipeline.admission import Admission

ENGINE_UNFINISHED = Gauge("vresponses_engine_unfinished_requests", "Requests the engine is still working on")
BACKGROUND_JOBS = Gauge("vresponses_background_jobs", "Background responses running in this process")
ADMITTED = Gauge("vresponses_admitted_requests", "Requests admitted to the engine and not finished")
QUEUED_TOKENS = Gauge("vresponses_queued_prompt_tokens", "Prompt tokens of admitted requests awaiting a first token")
REFUSALS = Gauge("vresponses_admission_refusals", "Requests refused by admission since start, by bound", ["bound"])
ENGINE_UP = Gauge("vresponses_engine_up", "1 while the engine serves, 0 while it is down or restarting")
ENGINE_RESTARTS = Gauge("vresponses_engine_restarts", "Engine restarts since start")


def observe(state: Any) -> None:
    """Refresh the gauges from the live state."""
    ENGINE_UNFINISHED.set(state.responder.engine.unfinished_requests())
    BACKGROUND_JOBS.set(len(state.jobs.tasks))
    admission = state.responder.engine
    if isinstance(admission, Admission):
        ADMITTED.set(admission.load.requests)
        QUEUED_TOKENS.set(admission.load.queued_prompt_tokens)
        for bound in ("requests", "prompt_tokens"):
            REFUSALS.labels(bound).set(admission.load.refused.get(bound, 0))
        supervisor = admission.engine
        if isinstance(supervisor, SupervisedEngine):
            ENGINE_UP.set(1 if supervisor.state == READY else 0)
            ENGINE_RESTARTS.set(supervisor.restarts)
    replicas.observe(state.responder.engine)
