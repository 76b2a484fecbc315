"""Two real vLLM replicas (`vllm serve --enable-scale-out`, the embedded model) behind `vresponses serve --engine-url`.

The conformance tests of test_responses/test_tools run again through the remote engine; then conversations keep
their cache across replicas (cache-aware routing against a single replica and against round-robin), and a replica
killed mid-run loses no stored response while new requests go to the other.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import jsonschema
import pytest
from gradient import Gradient

from tests.e2e import test_responses as responses
from tests.e2e import test_tools as tools
from tests.e2e.conftest import KEY, MODEL, OTHER_KEY
from tests.e2e.replica import Replica
from tests.e2e.server import Server
from vresponses.models.prepare import prepare_default_model
from vresponses.settings import default_home

AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Replica, Replica]]:
    base = tmp_path_factory.mktemp("replicas")
    model = prepare_default_model(default_home())
    pair = (Replica(model, MODEL, base / "a.log"), Replica(model, MODEL, base / "b.log"))
    try:
        for replica in pair:
            replica.launch()
        for replica in pair:
            replica.wait()
        yield pair
    finally:
        for replica in pair:
            replica.stop()


def front_end(base: Path, name: str, urls: list[str], *extra: str) -> Server:
    engine = [arg for url in urls for arg in ("--engine-url", url)]
    store = f"sqlite:///{base / (name + '.db')}"
    return Server(store, KEY, base / f"{name}.log", "--api-key", OTHER_KEY, *engine, *extra)


@pytest.fixture(scope="module")
def server(replicas: tuple[Replica, Replica], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = front_end(tmp_path_factory.mktemp("front"), "aware", [r.url for r in replicas]).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[Gradient]:
    with Gradient(model_access_key=KEY, base_url=server.url + "/v1", max_retries=0, timeout=300) as c:
        yield c


# The conformance tests, unchanged, through the remote engine (the module's `server` and `client` above).
test_create_returns_hybrid_response = responses.test_create_returns_hybrid_response
test_stream_equals_non_stream_at_temperature_zero = responses.test_stream_equals_non_stream_at_temperature_zero
test_include_usage_adds_a_last_chunk = responses.test_include_usage_adds_a_last_chunk
test_stop_sequence_never_in_output = responses.test_stop_sequence_never_in_output
test_length_finish = responses.test_length_finish
test_cached_tokens_on_repeated_long_prompt = responses.test_cached_tokens_on_repeated_long_prompt
test_models_and_health = responses.test_models_and_health
test_invalid_requests_through_sdk = responses.test_invalid_requests_through_sdk
test_non_streaming_disconnect_aborts_too = responses.test_non_streaming_disconnect_aborts_too
test_parallel_false_gives_exactly_one_call = tools.test_parallel_false_gives_exactly_one_call
test_agent_loop = tools.test_agent_loop
test_logprobs_present_exactly_when_asked = tools.test_logprobs_present_exactly_when_asked


@pytest.mark.parametrize(("mode", "stream"), [("required", False), ("named", True)])
def test_forced_calls_validate(client: Gradient, mode: str, stream: bool) -> None:
    # Constrained decoding runs on the replica: its structured-output parameters travel in the sampling params.
    cases = tools.CASES[:4]
    with ThreadPoolExecutor(len(cases)) as pool:
        results = list(pool.map(lambda case: tools.forced(client, *case, mode, stream, parallel=False), cases))
    for (_, tool), calls in zip(cases, results, strict=True):
        assert len(calls) == 1
        name, arguments = calls[0]
        assert mode == "required" or name == tool["name"]
        schema = tool["parameters"] if name == tool["name"] else tools.DISTRACTOR["parameters"]
        jsonschema.validate(json.loads(arguments), schema)


def test_disconnect_aborts_on_the_replica(server: Server, replicas: tuple[Replica, Replica]) -> None:
    responses.test_disconnect_aborts_engine_request(server)
    deadline = time.monotonic() + 10
    while sum(r.running() for r in replicas) > 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sum(r.running() for r in replicas) == 0


async def chat(url: str, conversations: int = 8, turns: int = 10) -> float:
    """Concurrent previous_response_id conversations; the share of their prompt tokens served from cache."""
    nonce = uuid.uuid4().hex[:12]  # a run's prompts share nothing with earlier runs' cached blocks

    async def one(http: httpx.AsyncClient, c: int) -> tuple[int, int]:
        previous, cached, prompt = None, 0, 0
        for t in range(turns):
            # Conversations differ in length, so they do not run in lockstep (which would make round-robin sticky).
            words = " ".join(f"{nonce}-{c}-{t}-{i}" for i in range(4 + 2 * c))
            body = {
                "model": MODEL,
                "input": f"Conversation {c}, turn {t}. Please remember these codes: {words}.",
                "max_output_tokens": 12,
                "temperature": 0,
                "previous_response_id": previous,
            }
            r = await http.post(url + "/v1/responses", json=body)
            assert r.status_code == 200, r.text
            usage = r.json()["usage"]
            previous = r.json()["id"]
            cached += usage["input_tokens_details"]["cached_tokens"]
            prompt += usage["input_tokens"]
        return cached, prompt

    async with httpx.AsyncClient(headers=AUTH, timeout=600) as http:
        results = await asyncio.gather(*(one(http, c) for c in range(conversations)))
    cached, prompt = sum(r[0] for r in results), sum(r[1] for r in results)
    print(f"\n{url}: {cached} of {prompt} prompt tokens cached")
    return cached / prompt


def test_conversations_keep_their_cache_across_replicas(
    server: Server, replicas: tuple[Replica, Replica], tmp_path_factory: pytest.TempPathFactory
) -> None:
    base = tmp_path_factory.mktemp("compare")
    single = front_end(base, "single", [replicas[0].url]).start()
    try:
        one = asyncio.run(chat(single.url))
    finally:
        single.stop()
    aware = asyncio.run(chat(server.url))
    rr_server = front_end(base, "rr", [r.url for r in replicas], "--routing", "round-robin").start()
    try:
        rr = asyncio.run(chat(rr_server.url))
    finally:
        rr_server.stop()
    # Prompts differ a little between runs (each has its own nonce), so compare the cached share of the prompt.
    print(f"cached share: one replica {one:.3f}, two cache-aware {aware:.3f}, two round-robin {rr:.3f}")
    assert aware >= 0.9 * one
    assert rr < 0.9 * aware
    metrics = httpx.get(server.url + "/metrics", headers=AUTH).text
    assert 'reason="affinity"' in metrics


def _in_flight(metrics: str, url: str) -> float:
    prefix = f'vresponses_replica_in_flight{{replica="{url}"}} '
    return next(float(line[len(prefix) :]) for line in metrics.splitlines() if line.startswith(prefix))


async def test_killing_a_replica_loses_no_stored_response(server: Server, replicas: tuple[Replica, Replica]) -> None:
    survivor, victim = replicas
    seen: list[tuple[str, bool, float]] = []  # (response id, completed without error, when it was sent)

    async def one(http: httpx.AsyncClient, c: int) -> None:
        previous = None
        for t in range(6):
            body = {
                "model": MODEL,
                "input": f"Story {c}, part {t}: tell me more about the lighthouse keeper.",
                "max_output_tokens": 24,
                "temperature": 0,
                "stream": True,
                "previous_response_id": previous,
            }
            sent, response_id, failed = time.monotonic(), None, False
            async with http.stream("POST", server.url + "/v1/responses", json=body) as r:
                assert r.status_code == 200, await r.aread()
                async for line in r.aiter_lines():
                    if line.startswith("data: {"):
                        chunk = json.loads(line[6:])
                        failed = failed or "error" in chunk
                        response_id = response_id or chunk.get("id")
            assert response_id is not None
            seen.append((response_id, not failed, sent))
            if not failed:
                previous = response_id

    async with httpx.AsyncClient(headers=AUTH, timeout=300) as http:
        run = asyncio.gather(*(one(http, c) for c in range(8)))
        async with asyncio.timeout(120):
            # Kill it while it is streaming: poll the front end's gauge, a condition only the server can report.
            while len(seen) < 8 or _in_flight((await http.get(server.url + "/metrics")).text, victim.url) < 1:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        victim.kill()
        killed = time.monotonic()
        await run
        for response_id, _, _ in seen:
            stored = await http.get(f"{server.url}/v1/responses/{response_id}")
            assert stored.status_code == 200
            assert stored.json()["status"] in ("completed", "incomplete", "failed")
        health = (await http.get(server.url + "/health")).json()
    assert len(seen) == 48
    failed = [s for s in seen if not s[1]]
    assert len(failed) <= 8  # only requests streaming from the victim at the moment it died
    assert all(ok for _, ok, sent in seen if sent > killed)  # after it, every request went to the survivor
    assert sum(sent > killed for _, _, sent in seen) >= 8
    assert {r["url"]: r["up"] for r in health["replicas"]} == {survivor.url: True, victim.url: False}
