"""Through the API: a client schema that points elsewhere is a 400, and the server fetches and reads nothing."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.listener import Listener

from vresponses.engines.fake import FakeEngine

CALL = '<tool_call>\n{"name": "f", "arguments": {"x": 1}}\n</tool_call>'


def _body(ref: str, stream: bool) -> dict[str, Any]:
    parameters = {"type": "object", "properties": {"x": {"type": "integer", "not": {"$ref": ref}}}}
    return {
        "model": "fake-model",
        "input": "call f",
        "tools": [{"type": "function", "name": "f", "parameters": parameters}],
        "tool_choice": "required",
        "stream": stream,
    }


@pytest.mark.parametrize("stream", [False, True])
def test_forced_call_with_a_remote_ref_fetches_nothing(client: TestClient, fake: FakeEngine, stream: bool) -> None:
    fake.enqueue(CALL)
    with Listener().running() as listener:
        r = client.post("/v1/responses", json=_body(listener.url + "/evil.json", stream))
        r.read()
    assert listener.paths == []
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "tools[0].parameters"


@pytest.mark.parametrize("stream", [False, True])
def test_forced_call_with_a_file_ref_reads_nothing(
    client: TestClient, fake: FakeEngine, stream: bool, watch_dev_zero: list[str]
) -> None:
    fake.enqueue(CALL)
    r = client.post("/v1/responses", json=_body("file:///dev/zero", stream))
    r.read()
    assert watch_dev_zero == []
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "tools[0].parameters"


def test_local_refs_still_work(client: TestClient, fake: FakeEngine) -> None:
    fake.enqueue(CALL)
    parameters = {
        "type": "object",
        "$defs": {"n": {"type": "integer"}},
        "properties": {"x": {"$ref": "#/$defs/n"}},
    }
    tools = [{"type": "function", "name": "f", "parameters": parameters}]
    body = {"model": "fake-model", "input": "hi", "tools": tools, "tool_choice": "required"}
    r = client.post("/v1/responses", json=body)
    assert r.status_code == 200, r.text
    calls = r.json()["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["f"]


def test_forced_calls_are_validated_off_the_event_loop(
    client: TestClient, fake: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vresponses.pipeline import generate

    threads: list[threading.Thread] = []
    real = generate.arguments_valid

    def recording(tool: Any, arguments: str) -> bool:
        threads.append(threading.current_thread())
        return real(tool, arguments)

    monkeypatch.setattr(generate, "arguments_valid", recording)
    loop_threads: set[threading.Thread] = set()
    client.portal.call(lambda: loop_threads.add(threading.current_thread()))  # type: ignore[union-attr]
    fake.enqueue(CALL)
    tools = [{"type": "function", "name": "f", "parameters": {"type": "object"}}]
    body = {"model": "fake-model", "input": "hi", "tools": tools, "tool_choice": "required"}
    assert client.post("/v1/responses", json=body).status_code == 200
    assert threads and not set(threads) & loop_threads
