"""What /health and /metrics add when the engine is a set of remote replicas: per-replica state and counters."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from vresponses.engines.base import Engine
from vresponses.engines.remote import RemoteEngine
from vresponses.engines.supervisor import SupervisedEngine
from vresponses.pipeline.admission import Admission


def remote_engine(engine: Engine) -> RemoteEngine | None:
    """The remote engine under admission and supervision, or None when generation is in-process."""
    if isinstance(engine, Admission):
        engine = engine.engine
    if isinstance(engine, SupervisedEngine):
        engine = engine.current
    return engine if isinstance(engine, RemoteEngine) else None


def health_detail(engine: Engine) -> dict[str, Any]:
    """Extra /health fields: each replica's state, or nothing for an in-process engine."""
    remote = remote_engine(engine)
    if remote is None:
        return {}
    return {
        "replicas": [
            {"url": s.url, "up": s.up, "in_flight": s.in_flight, "failures": s.failures, "error": s.last_error}
            for s in remote.replica_stats()
        ]
    }


class _ReplicaCollector:
    """Reads the observed engine's router at scrape time, so routing itself never touches Prometheus objects."""

    def __init__(self) -> None:
        self.engine: weakref.ref[RemoteEngine] | None = None

    def collect(self) -> Iterator[Metric]:
        engine = self.engine() if self.engine is not None else None
        if engine is None:
            return
        up = GaugeMetricFamily("vresponses_replica_up", "Whether the replica is in rotation", labels=["replica"])
        in_flight = GaugeMetricFamily(
            "vresponses_replica_in_flight", "Requests this process has in flight on the replica", labels=["replica"]
        )
        routed = CounterMetricFamily(
            "vresponses_replica_routed", "Requests routed to the replica, by reason", labels=["replica", "reason"]
        )
        prompt = CounterMetricFamily(
            "vresponses_replica_prompt_tokens", "Prompt tokens sent to the replica", labels=["replica"]
        )
        cached = CounterMetricFamily(
            "vresponses_replica_cached_tokens",
            "Prompt tokens the replica served from its prefix cache",
            labels=["replica"],
        )
        for s in engine.replica_stats():
            up.add_metric([s.url], 1.0 if s.up else 0.0)
            in_flight.add_metric([s.url], s.in_flight)
            for reason, count in s.routed.items():
                routed.add_metric([s.url, reason], count)
            prompt.add_metric([s.url], s.prompt_tokens)
            cached.add_metric([s.url], s.cached_tokens)
        blocks, nbytes = engine.index_stats()
        index_blocks = GaugeMetricFamily("vresponses_router_index_blocks", "KV blocks the prefix index remembers")
        index_blocks.add_metric([], blocks)
        index_bytes = GaugeMetricFamily("vresponses_router_index_bytes", "Approximate memory of the prefix index")
        index_bytes.add_metric([], nbytes)
        yield from (up, in_flight, routed, prompt, cached, index_blocks, index_bytes)


_COLLECTOR = _ReplicaCollector()
REGISTRY.register(_COLLECTOR)


def observe(engine: Engine) -> None:
    """Report this engine's replicas at the next scrape (nothing for an in-process engine)."""
    remote = remote_engine(engine)
    _COLLECTOR.engine = weakref.ref(remote) if remote is not None else None
