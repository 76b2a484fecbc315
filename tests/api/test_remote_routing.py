"""The app on remote replicas (simulated in-process): conversations return to their replica from any front end."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from starlette.testclient import TestClient
from tests.engines.replicas import URLS, Replicas, make_engine, simulated

from vresponses.app import create_app
from vresponses.engines.remote import RemoteEngine
from vresponses.engines.router import Reason
from vresponses.settings import Settings
from vresponses.store.memory import MemoryStore

M = "sim-model"


@contextmanager
def front_end(replicas: Replicas, store: MemoryStore) -> Iterator[tuple[TestClient, RemoteEngine]]:
    engines: list[RemoteEngine] = []

    def start(_: Settings) -> RemoteEngine:
        engine = make_engine(replicas)
        engine.open()
        engines.append(engine)
        return engine

    with TestClient(create_app(Settings(), engine_factory=start, store=store)) as client:
        for _ in range(500):
            if client.get("/health").status_code == 200:
                break
            engines[0].checked.clear()
            client.portal.call(engines[0].checked.wait)  # the prober's next round
        yield client, engines[0]


def test_turns_return_to_their_replica_from_another_front_end() -> None:
    replicas = simulated()
    store = MemoryStore()
    with front_end(replicas, store) as (one, _), front_end(replicas, store) as (two, engine_two):
        health = two.get("/health").json()
        assert [(r["url"], r["up"]) for r in health["replicas"]] == [(url, True) for url in URLS]
        firsts = []
        for i in range(6):
            r = one.post("/v1/responses", json={"model": M, "input": f"conversation {i} " * 5, "max_output_tokens": 4})
            assert r.status_code == 200, r.text
            assert "replica" not in r.json()
            firsts.append((r.json()["id"], replicas.generates[-1]))
        assert {served for _, served in firsts} == set(URLS)  # spread over both
        for first_id, served in firsts:
            r = two.post(
                "/v1/responses",
                json={"model": M, "input": "go on", "previous_response_id": first_id, "max_output_tokens": 4},
            )
            assert r.status_code == 200, r.text
            assert replicas.generates[-1] == served
            assert "replica" not in two.get(f"/v1/responses/{first_id}").json()
        assert sum(r.routed[Reason.AFFINITY] for r in engine_two.router.replicas) == 6
        metrics = two.get("/metrics").text
        assert 'vresponses_replica_routed_total{reason="affinity"' in metrics
        assert "vresponses_router_index_bytes" in metrics


def test_health_is_503_until_a_replica_is_in() -> None:
    replicas = simulated()
    replicas.down.update(URLS)
    store = MemoryStore()
    engines: list[RemoteEngine] = []

    def start(_: Settings) -> RemoteEngine:
        engine = make_engine(replicas)
        engine.open()
        engines.append(engine)
        return engine

    with TestClient(create_app(Settings(), engine_factory=start, store=store)) as client:
        client.portal.call(engines[0].checked.wait)
        assert client.get("/health").status_code == 503
        r = client.post("/v1/responses", json={"model": M, "input": "hi", "max_output_tokens": 4})
        assert r.status_code == 503
        assert r.json()["error"]["type"] == "service_unavailable"
