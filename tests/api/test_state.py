"""Stored state on the fake engine: chains, retrieve/delete/input_items, tenants, background and cancel."""

from __future__ import annotations

import time

from starlette.testclient import TestClient

from vresponses.engines.fake import FakeEngine

M = "fake-model"


def create(client: TestClient, **body: object) -> dict:
    r = client.post("/v1/responses", json={"model": M, **body})
    assert r.status_code == 200, r.text
    return r.json()


def prompt_of(fake: FakeEngine, i: int = -1) -> str:
    return "".join(chr(t) for t in fake.requests[i][1])


def test_previous_response_id_renders_whole_chain(client: TestClient, fake: FakeEngine) -> None:
    fake.enqueue("first answer")
    one = create(client, input="turn one", instructions="Only turn one has these.")
    fake.enqueue("second answer")
    two = create(client, input="turn two", previous_response_id=one["id"])
    assert two["previous_response_id"] == one["id"]
    prompt = prompt_of(fake)
    assert "Only turn one" not in prompt  # instructions are not inherited
    assert prompt.index("turn one") < prompt.index("first answer") < prompt.index("turn two")
    # The earlier turn's prompt (minus its own instructions) is a prefix of this one: the prefix cache can hit.
    fake.enqueue("third")
    create(client, input="turn three", previous_response_id=two["id"])
    assert prompt_of(fake).startswith(prompt)


def test_chain_keeps_function_calls_and_outputs(client: TestClient, fake: FakeEngine) -> None:
    tools = [{"type": "function", "name": "add", "parameters": {"type": "object", "properties": {}}}]
    fake.enqueue('<tool_call>\n{"name": "add", "arguments": {}}\n</tool_call>')
    one = create(client, input="add please", tools=tools)
    call = one["output"][0]
    assert call["type"] == "function_call" and one["choices"][0]["finish_reason"] == "tool_calls"
    fake.enqueue("the sum is 5")
    two = create(
        client,
        input=[{"type": "function_call_output", "call_id": call["call_id"], "output": "5"}],
        previous_response_id=one["id"],
        tools=tools,
    )
    assert two["choices"][0]["message"]["content"] == "the sum is 5"
    prompt = prompt_of(fake)
    assert '"name": "add"' in prompt and "<tool_response>\n5\n</tool_response>" in prompt


def test_get_delete_and_tenants(client: TestClient, fake: FakeEngine) -> None:
    fake.enqueue("stored text")
    one = create(client, input="hello", metadata={"k": "v"})
    got = client.get(f"/v1/responses/{one['id']}").json()
    assert got == one | {"completed_at": got["completed_at"]}
    other = {"Authorization": "Bearer other-key"}
    rid = one["id"]
    for method, path in [("GET", ""), ("DELETE", ""), ("GET", "/input_items"), ("POST", "/cancel")]:
        r = client.request(method, f"/v1/responses/{rid}{path}", headers=other)
        assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error", (method, path)
    r = client.post("/v1/responses", json={"model": M, "input": "x", "previous_response_id": rid}, headers=other)
    assert r.status_code == 404
    assert client.get(f"/v1/responses/{rid}").status_code == 200  # the owner still has it
    r = client.delete(f"/v1/responses/{one['id']}")
    assert r.json() == {"id": one["id"], "object": "response.deleted", "deleted": True}
    for path in ("", "/input_items"):
        assert client.get(f"/v1/responses/{one['id']}{path}").status_code == 404
    assert client.delete(f"/v1/responses/{one['id']}").status_code == 404
    r = client.post("/v1/responses", json={"model": M, "input": "x", "previous_response_id": one["id"]})
    assert r.status_code == 404 and r.json()["error"]["param"] == "previous_response_id"


def test_store_false_writes_nothing(client: TestClient, fake: FakeEngine) -> None:
    one = create(client, input="hello", store=False)
    assert client.get(f"/v1/responses/{one['id']}").status_code == 404


def test_input_items_pagination(client: TestClient, fake: FakeEngine) -> None:
    items = [{"role": "user", "content": f"m{i}"} for i in range(5)]
    one = create(client, input=items)
    page = client.get(f"/v1/responses/{one['id']}/input_items", params={"limit": 2, "order": "asc"}).json()
    assert [d["content"][0]["text"] for d in page["data"]] == ["m0", "m1"] and page["has_more"]
    nxt = client.get(
        f"/v1/responses/{one['id']}/input_items", params={"limit": 10, "order": "asc", "after": page["last_id"]}
    ).json()
    assert [d["content"][0]["text"] for d in nxt["data"]] == ["m2", "m3", "m4"] and not nxt["has_more"]
    desc = client.get(f"/v1/responses/{one['id']}/input_items").json()
    assert desc["data"][0]["content"][0]["text"] == "m4"
    assert client.get(f"/v1/responses/{one['id']}/input_items", params={"limit": 0}).status_code == 400


def wait_status(client: TestClient, response_id: str, wanted: set[str], timeout: float = 5) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/v1/responses/{response_id}").json()
        if body["status"] in wanted:
            return body
        time.sleep(0.02)
    raise AssertionError(f"{response_id} never reached {wanted}: {body['status']}")


def test_background_runs_to_completion(client: TestClient, fake: FakeEngine) -> None:
    fake.enqueue("a", "b", "c", delay=0.05)
    started = create(client, input="hi", background=True)
    assert started["status"] == "queued" and started["background"] is True and started["choices"] == []
    wait_status(client, started["id"], {"in_progress"})
    done = wait_status(client, started["id"], {"completed"})
    assert done["choices"][0]["message"]["content"] == "abc"


def test_background_cancel_aborts_engine(client: TestClient, fake: FakeEngine) -> None:
    fake.enqueue(*"abcdefghijklmnopqrstuvwxyz", delay=0.05)
    started = create(client, input="hi", background=True)
    wait_status(client, started["id"], {"in_progress"})
    r = client.post(f"/v1/responses/{started['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert started["id"] in fake.aborted
    assert client.get(f"/v1/responses/{started['id']}").json()["status"] == "cancelled"
    assert fake.unfinished_requests() == 0


def test_background_bounded_429(client: TestClient, fake: FakeEngine) -> None:
    for _ in range(3):
        fake.enqueue(*"abcdefgh", delay=0.1)
    a = create(client, input="1", background=True)
    b = create(client, input="2", background=True)
    r = client.post("/v1/responses", json={"model": M, "input": "3", "background": True})
    assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error"
    for rid in (a["id"], b["id"]):
        client.post(f"/v1/responses/{rid}/cancel")


def test_cancel_foreground_response_is_400(client: TestClient, fake: FakeEngine) -> None:
    one = create(client, input="hi")
    assert client.post(f"/v1/responses/{one['id']}/cancel").status_code == 400


def test_chaining_from_unfinished_is_400(client: TestClient, fake: FakeEngine) -> None:
    fake.enqueue(*"abcdefgh", delay=0.1)
    bg = create(client, input="1", background=True)
    r = client.post("/v1/responses", json={"model": M, "input": "x", "previous_response_id": bg["id"]})
    assert r.status_code == 400
    client.post(f"/v1/responses/{bg['id']}/cancel")


def test_retention_limits_hold(fake: FakeEngine) -> None:
    from vresponses.app import create_app
    from vresponses.pipeline.jobs import JobsConfig
    from vresponses.settings import Settings
    from vresponses.store.memory import MemoryStore

    store = MemoryStore()
    config = JobsConfig(tick_seconds=0.02, prune_every_seconds=0, max_rows=2, max_age_seconds=3600)
    app = create_app(Settings(), engine_factory=lambda _: fake, store=store, jobs_config=config)
    with TestClient(app) as c:
        ids = [c.post("/v1/responses", json={"model": M, "input": f"n{i}"}).json()["id"] for i in range(5)]
        deadline = time.monotonic() + 5
        kept = ids
        while time.monotonic() < deadline and len(kept) > 2:
            time.sleep(0.02)
            kept = [rid for rid in ids if c.get(f"/v1/responses/{rid}").status_code == 200]
        assert kept == ids[-2:]  # the newest two survive
