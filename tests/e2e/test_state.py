"""Issue 4 on the real engine: chains by id alone, restarts after SIGKILL, background work, PostgreSQL sharing."""

from __future__ import annotations

import itertools
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradient
import httpx
import pytest
from gradient import Gradient

from tests.e2e.conftest import KEY, MODEL, OTHER_KEY
from tests.e2e.server import Server

ADD = {
    "type": "function",
    "name": "add",
    "description": "Add two integers.",
    "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                   "required": ["a", "b"]},
}  # fmt: skip
FILLER = " I like long walks by the sea, old books, and the smell of rain on warm stones." * 6


def sdk(server: Server, key: str = KEY) -> Gradient:
    return Gradient(model_access_key=key, base_url=server.url + "/v1", max_retries=0, timeout=300)


def turn(client: Gradient, text_or_items: Any, prev: str | None, **kw: Any) -> Any:
    extra = {"previous_response_id": prev} if prev else {}
    return client.responses.create(
        model=MODEL, input=text_or_items, tools=[ADD], temperature=0, max_output_tokens=kw.pop("max_output_tokens", 40),
        extra_body=extra, **kw,
    )  # fmt: skip


def get(server: Server, rid: str, key: str = KEY, path: str = "") -> httpx.Response:
    return httpx.get(f"{server.url}/v1/responses/{rid}{path}", headers={"Authorization": f"Bearer {key}"})


def test_five_turns_with_a_tool_call_by_id_alone(client: Gradient, server: Server) -> None:
    t1 = turn(client, "My name is Ann." + FILLER, None)
    t2 = turn(client, "Please add 2 and 3 with the add tool.", t1.id, tool_choice="required")
    call = t2.output[0]
    assert call.type == "function_call" and call.name == "add"
    args = json.loads(call.arguments)
    t3 = turn(client, [{"type": "function_call_output", "call_id": call.call_id,
                        "output": json.dumps({"sum": args["a"] + args["b"]})}], t2.id)  # fmt: skip
    t4 = turn(client, "Thanks! Tell me something about the sea." + FILLER, t3.id)
    t5 = turn(client, "What is my name?", t4.id)
    turns = [t1, t2, t3, t4, t5]
    assert all(t.status == ("incomplete" if t.choices[0].finish_reason == "length" else "completed") for t in turns)
    assert t3.choices[0].message.content and t5.choices[0].message.content
    for prev, cur in itertools.pairwise(turns):
        # Each turn's prompt holds the previous prompt and output: the chain came from the store.
        assert cur.usage.input_tokens > prev.usage.input_tokens + prev.usage.output_tokens
        # And it rendered byte-identically, so the engine's prefix cache covers nearly all of it.
        cached = cur.usage.input_tokens_details.cached_tokens
        assert cached >= prev.usage.input_tokens - 128, (cached, prev.usage.input_tokens)
    items = get(server, t3.id, path="/input_items?order=asc").json()["data"]
    assert [i["type"] for i in items] == ["function_call_output"]
    stored = get(server, t2.id).json()
    assert stored["output"][0]["call_id"] == call.call_id and stored["choices"][0]["finish_reason"] == "tool_calls"


def test_other_key_sees_nothing(client: Gradient, other_client: Gradient, server: Server) -> None:
    mine = turn(client, "Hello there.", None, max_output_tokens=5)
    for path in ("", "/input_items"):
        assert get(server, mine.id, OTHER_KEY, path).status_code == 404
    headers = {"Authorization": f"Bearer {OTHER_KEY}"}
    assert httpx.delete(f"{server.url}/v1/responses/{mine.id}", headers=headers).status_code == 404
    assert httpx.post(f"{server.url}/v1/responses/{mine.id}/cancel", headers=headers).status_code == 404
    with pytest.raises(gradient.NotFoundError):
        turn(other_client, "continue", mine.id)
    assert get(server, mine.id).status_code == 200
    assert httpx.delete(f"{server.url}/v1/responses/{mine.id}", headers={"Authorization": f"Bearer {KEY}"}).json()[
        "deleted"
    ]
    assert get(server, mine.id).status_code == 404
    with pytest.raises(gradient.NotFoundError):
        turn(client, "continue", mine.id)


def poll(server: Server, rid: str, until: set[str], timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        body = get(server, rid).json()
        if not seen or seen[-1] != body["status"]:
            seen.append(body["status"])
        if body["status"] in until:
            body["_seen"] = seen
            return body
        time.sleep(0.1)
    raise AssertionError(f"{rid} stuck at {seen}")


def background(server: Server, text: str, max_tokens: int) -> dict[str, Any]:
    r = httpx.post(
        f"{server.url}/v1/responses",
        headers={"Authorization": f"Bearer {KEY}"},
        json={"model": MODEL, "input": text, "background": True, "max_output_tokens": max_tokens, "temperature": 0},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] in ("queued", "in_progress") and body["background"] is True
    return body


def test_background_polled_and_cancelled(server: Server) -> None:
    done = poll(server, background(server, "Write a haiku about rain.", 30)["id"], {"completed", "incomplete"})
    assert done["choices"][0]["message"]["content"]
    assert "in_progress" in done["_seen"] or "queued" in done["_seen"]
    long = background(server, "Write a very long story about a dragon.", 3000)
    poll(server, long["id"], {"in_progress"})
    time.sleep(1.0)
    r = httpx.post(f"{server.url}/v1/responses/{long['id']}/cancel", headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert get(server, long["id"]).json()["status"] == "cancelled"
    deadline = time.monotonic() + 10
    while server.unfinished() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server.unfinished() == 0


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(f"sqlite:///{tmp_path / 'db.sqlite'}", KEY, tmp_path / "server.log")
    yield srv
    srv.stop()


def test_sigkill_restart_keeps_conversation_and_fails_orphans(own_server: Server) -> None:
    own_server.start()
    with sdk(own_server) as client:
        t1 = turn(client, "My favourite colour is green.", None)
    orphan = background(own_server, "Write a very long story about a dragon.", 3000)
    poll(own_server, orphan["id"], {"in_progress"})
    own_server.kill()
    own_server.start()
    with sdk(own_server) as client:
        assert client.responses.create(model=MODEL, input="x", max_output_tokens=1).status  # serving again
        t2 = turn(client, "What is my favourite colour?", t1.id)
    assert t2.usage.input_tokens > t1.usage.input_tokens + t1.usage.output_tokens
    assert get(own_server, t1.id).json()["choices"][0]["message"]["content"] == t1.choices[0].message.content
    # The job that was running when the process died is marked failed once its lease runs out.
    assert poll(own_server, orphan["id"], {"failed", "completed", "cancelled", "incomplete"}, 60)["status"] == "failed"


@pytest.fixture
def pg_url() -> Iterator[str]:
    admin = os.environ.get("VRESPONSES_TEST_PG_URL")
    if not admin:
        pytest.skip("VRESPONSES_TEST_PG_URL is not set (make test starts PostgreSQL and sets it)")
    import asyncio

    import asyncpg

    name = "vr_e2e_" + uuid.uuid4().hex[:10]

    async def admin_sql(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin_sql(f'CREATE DATABASE "{name}"'))
    yield admin.rsplit("/", 1)[0] + "/" + name
    asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_two_processes_share_postgresql(pg_url: str, tmp_path: Path) -> None:
    a = Server(pg_url, KEY, tmp_path / "a.log")
    b = Server(pg_url, KEY, tmp_path / "b.log")
    try:
        a.start()
        b.start()
        with sdk(a) as ca, sdk(b) as cb:
            t1 = turn(ca, "My dog is called Rex.", None)
            t2 = turn(cb, "What is my dog called?", t1.id)
            assert t2.previous_response_id == t1.id
            assert t2.usage.input_tokens > t1.usage.input_tokens + t1.usage.output_tokens
            assert get(a, t2.id).json()["id"] == t2.id  # b's write is visible to a
            # A background job started on a can be cancelled through b.
            job = background(a, "Write a very long story about a dragon.", 3000)
            poll(a, job["id"], {"in_progress"})
            r = httpx.post(f"{b.url}/v1/responses/{job['id']}/cancel", headers={"Authorization": f"Bearer {KEY}"})
            assert r.json()["status"] == "cancelled"
            assert poll(a, job["id"], {"cancelled"}, 30)["status"] == "cancelled"
    finally:
        a.stop()
        b.stop()
