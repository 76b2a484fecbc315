"""OpenAI's dialect on the fake engine, through the real `openai` SDK and raw HTTP/WebSocket."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from openai import OpenAI
from starlette.testclient import TestClient
from tests.api.conftest import KEY

from vresponses.engines.fake import FakeEngine

M = "fake-model"
CALL = '<tool_call>\n{"name": "add", "arguments": {"a": 1}}\n</tool_call>'
ADD = {"type": "function", "name": "add", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}


@pytest.fixture
def sdk(client: TestClient) -> Iterator[OpenAI]:
    # The test client is an httpx.Client over the ASGI app: the SDK talks to the app in-process.
    yield OpenAI(api_key=KEY, base_url="http://testserver/openai/v1", http_client=client, max_retries=0)


def sse(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if "data" in lines:
            events.append((lines.get("event", ""), json.loads(lines["data"])))
    return events


def test_create_returns_the_responses_object(sdk: OpenAI, fake: FakeEngine) -> None:
    fake.enqueue("Hello", ", world")
    r = sdk.responses.create(model=M, input="hi", metadata={"k": "v"}, temperature=0.5)
    assert r.output_text == "Hello, world"
    assert r.status == "completed" and r.object == "response" and r.created_at > 0 and r.completed_at
    [message] = r.output
    assert message.type == "message" and message.id.startswith("msg_") and message.status == "completed"
    assert message.content[0].type == "output_text" and message.content[0].annotations == []
    assert r.usage is not None and r.usage.output_tokens == 2
    assert r.usage.input_tokens_details.cached_tokens == 0 and r.usage.output_tokens_details.reasoning_tokens == 0
    assert (r.temperature, r.top_p, r.metadata, r.tool_choice, r.truncation) == (
        0.5,
        1.0,
        {"k": "v"},
        "none",
        "disabled",
    )
    assert r.incomplete_details is None and r.error is None


def test_stream_events_in_order_with_sequence_numbers(client: TestClient, fake: FakeEngine) -> None:
    fake.enqueue("Hel", "lo")
    r = client.post("/openai/v1/responses", json={"model": M, "input": "hi", "stream": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse(r.text)
    kinds = [kind for kind, _ in events]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert all(data["type"] == kind for kind, data in events)  # the event line equals the type
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    final = events[-1][1]["response"]
    got = client.get(f"/openai/v1/responses/{final['id']}").json()
    assert got["output"] == final["output"]
    item_id = events[2][1]["item"]["id"]
    assert got["output"][0]["id"] == item_id == events[4][1]["item_id"]  # the stream's ids are GET's ids


def test_sdk_stream_and_final_response(sdk: OpenAI, fake: FakeEngine) -> None:
    fake.enqueue("a", "b", "c")
    with sdk.responses.stream(model=M, input="hi") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "abc"
    assert sdk.responses.retrieve(final.id).output_text == "abc"


def test_tool_call_stream_and_output(client: TestClient, sdk: OpenAI, fake: FakeEngine) -> None:
    fake.enqueue("Sure. ", CALL)
    r = client.post("/openai/v1/responses", json={"model": M, "input": "add", "tools": [ADD], "stream": True})
    events = sse(r.text)
    kinds = [k for k, _ in events]
    assert "response.function_call_arguments.delta" in kinds and "response.function_call_arguments.done" in kinds
    added = [d["item"] for k, d in events if k == "response.output_item.added"]
    assert [i["type"] for i in added] == ["message", "function_call"]
    done = next(d for k, d in events if k == "response.function_call_arguments.done")
    assert json.loads(done["arguments"]) == {"a": 1} and done["name"] == "add"
    final = sdk.responses.retrieve(events[-1][1]["response"]["id"])
    call = final.output[1]
    assert call.type == "function_call" and call.id == added[1]["id"] and call.call_id == added[1]["call_id"]


def test_max_output_tokens_ends_incomplete(client: TestClient, fake: FakeEngine) -> None:
    fake.enqueue("a", "b", "c")
    r = client.post("/openai/v1/responses", json={"model": M, "input": "hi", "max_output_tokens": 2, "stream": True})
    kind, data = sse(r.text)[-1]
    assert kind == "response.incomplete"
    assert data["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_failure_mid_stream_is_response_failed(client: TestClient, fake: FakeEngine) -> None:
    fake.enqueue("a", "b", "c", fail_after=1)
    r = client.post("/openai/v1/responses", json={"model": M, "input": "hi", "stream": True})
    kind, data = sse(r.text)[-1]
    assert kind == "response.failed"
    assert data["response"]["status"] == "failed" and data["response"]["error"]["code"]


def test_a_response_is_shared_by_both_dialects(client: TestClient, sdk: OpenAI, fake: FakeEngine) -> None:
    fake.enqueue("first")
    gradient = client.post("/v1/responses", json={"model": M, "input": "one"}).json()
    same = sdk.responses.retrieve(gradient["id"])
    assert same.output_text == "first"
    fake.enqueue("second")
    two = sdk.responses.create(model=M, input="two", previous_response_id=gradient["id"])
    prompt = "".join(chr(t) for t in fake.requests[-1][1])
    assert prompt.index("one") < prompt.index("first") < prompt.index("two")
    assert client.get(f"/v1/responses/{two.id}").json()["choices"][0]["message"]["content"] == "second"
    sdk.responses.delete(two.id)
    assert client.get(f"/v1/responses/{two.id}").status_code == 404


def test_json_schema_format_constrains_decoding(sdk: OpenAI, fake: FakeEngine) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    }
    fake.enqueue('{"city": "Paris"}')
    r = sdk.responses.create(
        model=M,
        input="capital of France as JSON",
        text={"format": {"type": "json_schema", "name": "city", "schema": schema, "strict": True}},
    )
    constraint = fake.requests[-1][2].constraint
    assert constraint is not None and constraint.json == {
        **schema,
        "properties": {"city": {"type": "string", "maxLength": 512}},
    }
    assert json.loads(r.output_text) == {"city": "Paris"}
    assert r.text.format.type == "json_schema"


def test_openai_input_shapes_are_accepted(sdk: OpenAI, fake: FakeEngine) -> None:
    fake.enqueue("ok")
    sdk.responses.create(
        model=M,
        input=[
            {"type": "message", "role": "developer", "content": "Be brief."},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "hi there"}],
                "phase": "final_answer",
            },
            {"type": "message", "role": "user", "content": "again"},
        ],
        include=["reasoning.encrypted_content"],
        reasoning={"effort": "low", "summary": "auto"},
        prompt_cache_key="k",
        safety_identifier="s",
        truncation="auto",
        store=False,
    )
    prompt = "".join(chr(t) for t in fake.requests[-1][1])
    assert "Be brief." in prompt and prompt.index("hello") < prompt.index("hi there") < prompt.index("again")


def test_image_input_is_a_400_naming_the_modality(client: TestClient) -> None:
    part = {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}
    r = client.post("/openai/v1/responses", json={"model": M, "input": [{"role": "user", "content": [part]}]})
    assert r.status_code == 400 and "no image input" in r.json()["error"]["message"]


def test_websocket_turns_and_store_false_continuation(client: TestClient, fake: FakeEngine) -> None:
    fake.enqueue("first")
    fake.enqueue("second")
    with client.websocket_connect("/openai/v1/responses", headers={"Authorization": f"Bearer {KEY}"}) as ws:
        ws.send_text(json.dumps({"type": "response.create", "model": M, "store": False, "input": "remember X"}))
        first = _turn(ws)
        assert first[-1]["type"] == "response.completed"
        rid = first[-1]["response"]["id"]
        ws.send_text(
            json.dumps(
                {"type": "response.create", "model": M, "store": False, "input": "what?", "previous_response_id": rid}
            )
        )
        second = _turn(ws)
        assert second[-1]["type"] == "response.completed"
        prompt = "".join(chr(t) for t in fake.requests[-1][1])
        assert prompt.index("remember X") < prompt.index("first") < prompt.index("what?")
        # A failed continuation forgets the response it continued.
        bad = [{"type": "function_call_output", "call_id": "nope", "output": "x"}]
        ws.send_text(
            json.dumps(
                {"type": "response.create", "model": M, "store": False, "input": bad, "previous_response_id": rid}
            )
        )
        assert _turn(ws)[-1]["type"] == "error"
        ws.send_text(
            json.dumps(
                {"type": "response.create", "model": M, "store": False, "input": "again", "previous_response_id": rid}
            )
        )
        assert _turn(ws)[-1]["error"]["code"] == "previous_response_not_found"
    with client.websocket_connect("/openai/v1/responses", headers={"Authorization": f"Bearer {KEY}"}) as ws:
        ws.send_text(
            json.dumps(
                {"type": "response.create", "model": M, "store": False, "input": "x", "previous_response_id": rid}
            )
        )
        assert _turn(ws)[-1]["error"]["code"] == "previous_response_not_found"


def _turn(ws: object) -> list[dict]:
    out = []
    while True:
        message = json.loads(ws.receive_text())  # type: ignore[attr-defined]
        out.append(message)
        if message["type"] in ("response.completed", "response.incomplete", "response.failed", "error"):
            return out


def test_compact_then_continue_from_the_compaction(client: TestClient, sdk: OpenAI, fake: FakeEngine) -> None:
    fake.enqueue("Launch is Tuesday; support first.")
    r = client.post(
        "/openai/v1/responses/compact",
        json={
            "model": M,
            "input": [
                {"role": "user", "content": "We launch Tuesday and notify support first."},
                {"role": "assistant", "content": "Understood."},
            ],
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "response.compaction" and body["output"][0]["type"] == "compaction"
    fake.enqueue("Tuesday")
    sdk.responses.create(model=M, input=[*body["output"], {"role": "user", "content": "When?"}])  # type: ignore[list-item]
    prompt = "".join(chr(t) for t in fake.requests[-1][1])
    assert "Launch is Tuesday; support first." in prompt and "We launch Tuesday" not in prompt
    missing = client.post("/openai/v1/responses/compact", json={"input": "x"})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "model"


def test_input_tokens_counts_the_rendered_prompt(client: TestClient, fake: FakeEngine) -> None:
    r = client.post("/openai/v1/responses/input_tokens", json={"model": M, "input": "hello"})
    assert r.status_code == 200 and r.json()["object"] == "response.input_tokens"
    fake.enqueue("x")
    client.post("/openai/v1/responses", json={"model": M, "input": "hello"})
    assert r.json()["input_tokens"] == len(fake.requests[-1][1])  # the fake tokenizer: one token per character


def test_get_stream_replays_a_stored_response(client: TestClient, fake: FakeEngine) -> None:
    fake.enqueue("a", "b")
    rid = client.post("/openai/v1/responses", json={"model": M, "input": "hi"}).json()["id"]
    replayed = sse(client.get(f"/openai/v1/responses/{rid}?stream=true").text)
    assert replayed[0][0] == "response.created" and replayed[-1][0] == "response.completed"
    assert "".join(d.get("delta", "") for k, d in replayed if k == "response.output_text.delta") == "ab"
    later = sse(client.get(f"/openai/v1/responses/{rid}?stream=true&starting_after=3").text)
    assert [d["sequence_number"] for _, d in later] == [d["sequence_number"] for _, d in replayed][4:]


def test_get_stream_follows_a_running_background_response(client: TestClient, fake: FakeEngine) -> None:
    fake.enqueue("x", "y", "z", delay=0.05)
    created = client.post("/openai/v1/responses", json={"model": M, "input": "hi", "background": True}).json()
    assert created["status"] == "queued"
    events = sse(client.get(f"/openai/v1/responses/{created['id']}?stream=true").text)
    assert events[-1][0] == "response.completed"
    assert "".join(d.get("delta", "") for k, d in events if k == "response.output_text.delta") == "xyz"
    assert [d["sequence_number"] for _, d in events] == list(range(len(events)))
