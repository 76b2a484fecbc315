"""The app on fake engines when things break underneath: a full queue, a dying engine, a drain, a slow request."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.api.conftest import KEY

from vresponses.api.lifecycle import Lifecycle
from vresponses.app import create_app
from vresponses.engines.fake import FakeEngine
from vresponses.engines.supervisor import READY, RestartPolicy
from vresponses.pipeline.admission import AdmissionLimits
from vresponses.pipeline.jobs import JobsConfig
from vresponses.pipeline.ratelimit import KeyLimits
from vresponses.settings import Settings
from vresponses.store.memory import MemoryStore

M = "fake-model"
SLOW = dict(delay=0.05)


def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


class Engines:
    """An engine factory: each start gives a fresh fake engine (the first one is scripted by the test)."""

    def __init__(self) -> None:
        self.made: list[FakeEngine] = []

    def __call__(self, _: Settings) -> FakeEngine:
        self.made.append(FakeEngine())
        return self.made[-1]

    @property
    def current(self) -> FakeEngine:
        return self.made[-1]


@contextmanager
def app_client(**settings: Any) -> Iterator[tuple[TestClient, Engines, Lifecycle]]:
    engines = Engines()
    app = create_app(
        Settings(api_keys=(KEY, "other-key"), **settings),
        engine_factory=engines,
        store=MemoryStore(),
        jobs_config=JobsConfig(max_jobs=8, tick_seconds=0.05, lease_seconds=1.0),
    )
    with TestClient(app, headers={"Authorization": f"Bearer {KEY}"}) as client:
        client.app.state.lifecycle.parts.supervisor.policy = RestartPolicy(backoff_seconds=0.01, poll_seconds=0.01)
        yield client, engines, client.app.state.lifecycle


def stream_in_thread(client: TestClient, body: dict[str, Any], out: list[str]) -> threading.Thread:
    def run() -> None:
        with client.stream("POST", "/v1/responses", json={"model": M, "stream": True, **body}) as r:
            out.extend(line for line in r.iter_lines() if line)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_full_queue_refuses_at_once_with_retry_after() -> None:
    with app_client(admission=AdmissionLimits(max_requests=1)) as (client, engines, _):
        engines.current.enqueue(*"abcdefghij", **SLOW)
        lines: list[str] = []
        thread = stream_in_thread(client, {"input": "hi"}, lines)
        until(lambda: engines.current.unfinished_requests() == 1)
        began = time.perf_counter()
        r = client.post("/v1/responses", json={"model": M, "input": "hi"})
        elapsed = time.perf_counter() - began
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        error = r.json()["error"]
        assert error["type"] == "rate_limit_error" and "--max-concurrent-requests" in error["message"]
        assert elapsed < 0.5  # answered by the gate, not after the running stream
        assert client.get("/health").status_code == 200
        thread.join(10)
        assert lines[-1] == "data: [DONE]"
        assert client.post("/v1/responses", json={"model": M, "input": "hi"}).status_code == 200


def test_a_dead_engine_fails_streams_and_background_then_restarts() -> None:
    with app_client() as (client, engines, lifecycle):
        earlier = client.post("/v1/responses", json={"model": M, "input": "kept"}).json()
        dying = engines.current
        dying.enqueue(*"abcdefghijklmnopqrstuvwxyz", **SLOW)
        dying.enqueue(*"abcdefghijklmnopqrstuvwxyz", **SLOW)
        job = client.post("/v1/responses", json={"model": M, "input": "bg", "background": True}).json()
        lines: list[str] = []
        thread = stream_in_thread(client, {"input": "hi"}, lines)
        until(lambda: dying.unfinished_requests() == 2)
        dying.alive = False
        thread.join(10)
        assert '"error"' in lines[-1] and "died" in lines[-1]
        until(lambda: client.get(f"/v1/responses/{job['id']}").json()["status"] == "failed")
        failed = client.get(f"/v1/responses/{job['id']}").json()
        assert "died" in failed["error"]["message"]
        assert client.get(f"/v1/responses/{earlier['id']}").json()["output"] == earlier["output"]
        supervisor = lifecycle.parts.supervisor  # type: ignore[union-attr]
        until(lambda: supervisor.state == READY and len(engines.made) == 2)
        assert client.get("/health").status_code == 200
        assert client.post("/v1/responses", json={"model": M, "input": "again"}).status_code == 200


def test_while_the_engine_restarts_new_requests_get_503_and_stored_ones_stay_readable() -> None:
    with app_client() as (client, _, lifecycle):
        kept = client.post("/v1/responses", json={"model": M, "input": "kept"}).json()
        supervisor = lifecycle.parts.supervisor  # type: ignore[union-attr]
        supervisor.state = "restarting"  # held here: a real restart takes the engine's start-up time
        r = client.post("/v1/responses", json={"model": M, "input": "hi"})
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["code"] == "engine_unavailable"
        assert client.get("/health").status_code == 503
        assert client.get(f"/v1/responses/{kept['id']}").status_code == 200
        supervisor.state = READY


def test_drain_lets_short_work_finish_and_refuses_new_requests() -> None:
    with app_client(drain_timeout=5.0) as (client, engines, lifecycle):
        exits: list[bool] = []
        lifecycle.request_exit = lambda: exits.append(True)
        engines.current.enqueue(*"abcde", **SLOW)
        lines: list[str] = []
        thread = stream_in_thread(client, {"input": "hi"}, lines)
        until(lambda: engines.current.unfinished_requests() == 1)
        client.portal.call(lifecycle.begin_drain)  # type: ignore[union-attr]
        r = client.post("/v1/responses", json={"model": M, "input": "hi"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "server_shutdown" and "retry-after" in r.headers
        assert client.get("/health").status_code == 503
        thread.join(10)
        assert lines[-1] == "data: [DONE]"
        until(lambda: bool(exits))


def test_drain_timeout_stops_streams_with_an_error_and_fails_background_rows() -> None:
    with app_client(drain_timeout=0.3) as (client, engines, lifecycle):
        lifecycle.request_exit = lambda: None
        for _ in range(2):
            engines.current.enqueue(*"abcdefghijklmnopqrstuvwxyz" * 4, **SLOW)
        job = client.post("/v1/responses", json={"model": M, "input": "bg", "background": True}).json()
        lines: list[str] = []
        thread = stream_in_thread(client, {"input": "hi"}, lines)
        until(lambda: engines.current.unfinished_requests() == 2)
        client.portal.call(lifecycle.begin_drain)  # type: ignore[union-attr]
        thread.join(10)
        assert "--drain-timeout" in lines[-1] and '"server_shutdown"' in lines[-1]
        until(lambda: lifecycle.state == "stopping")
        store = lifecycle.parts.jobs.store  # type: ignore[union-attr]
        tenant = client.app.state.vr.responder.tenants.of(KEY)  # type: ignore[attr-defined]
        row = client.portal.call(store.get, job["id"], tenant)  # type: ignore[union-attr]
        assert row is not None and row.status == "failed" and b"--drain-timeout" in row.body


def test_wall_clock_limit_names_itself() -> None:
    with app_client(admission=AdmissionLimits(request_timeout=0.2)) as (client, engines, _):
        engines.current.enqueue(*"abcdefghijklmnopqrstuvwxyz", **SLOW)
        r = client.post("/v1/responses", json={"model": M, "input": "hi"})
        assert r.status_code == 504 and "--request-timeout" in r.json()["error"]["message"]
        engines.current.enqueue(*"abcdefghijklmnopqrstuvwxyz", **SLOW)
        lines: list[str] = []
        stream_in_thread(client, {"input": "hi"}, lines).join(10)
        assert '"request_timeout"' in lines[-1]


def test_prompt_limit_names_itself() -> None:
    with app_client(admission=AdmissionLimits(max_prompt_tokens=20)) as (client, _, _):
        r = client.post("/v1/responses", json={"model": M, "input": "a much longer prompt than twenty tokens"})
        assert r.status_code == 400 and "--max-prompt-tokens" in r.json()["error"]["message"]


def test_per_key_limits_send_openai_headers() -> None:
    with app_client(key_limits=KeyLimits(requests_per_minute=2)) as (client, _, _):
        first = client.post("/v1/responses", json={"model": M, "input": "hi"})
        assert first.status_code == 200
        assert first.headers["x-ratelimit-limit-requests"] == "2"
        assert first.headers["x-ratelimit-remaining-requests"] == "1"
        client.post("/v1/responses", json={"model": M, "input": "hi"})
        third = client.post("/v1/responses", json={"model": M, "input": "hi"})
        assert third.status_code == 429 and third.headers["x-ratelimit-remaining-requests"] == "0"
        assert int(third.headers["retry-after"]) >= 1 and "--rate-limit-rpm" in third.json()["error"]["message"]
        other = client.post(
            "/v1/responses", json={"model": M, "input": "hi"}, headers={"Authorization": "Bearer other-key"}
        )
        assert other.status_code == 200
        # A wrong key is a 401 and costs the key's window nothing.
        assert client.post("/v1/responses", json={}, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_no_rate_limit_headers_by_default(client: TestClient) -> None:
    r = client.post("/v1/responses", json={"model": M, "input": "hi"})
    assert r.status_code == 200 and not any(h.startswith("x-ratelimit") for h in r.headers)


@pytest.mark.parametrize("path", ["/health", "/v1/models"])
def test_gate_counts_and_releases_requests(client: TestClient, path: str) -> None:
    client.get(path)
    assert client.app.state.lifecycle.active == 0


def test_an_engine_that_cannot_restart_ends_the_server_with_exit_code_1() -> None:
    with app_client(engine_restarts=0) as (client, engines, lifecycle):
        exits: list[bool] = []
        lifecycle.request_exit = lambda: exits.append(True)
        lifecycle.parts.supervisor.policy = RestartPolicy(max_restarts=0, poll_seconds=0.01)  # type: ignore[union-attr]
        engines.current.alive = False
        until(lambda: bool(exits))
        assert lifecycle.exit_code == 1 and lifecycle.state == "stopping" and len(engines.made) == 1
        assert client.get("/health").status_code == 503
