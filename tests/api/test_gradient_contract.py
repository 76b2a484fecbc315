"""The Gradient dialect against the spec and the `gradient` SDK's own types, on the fake engine."""

from __future__ import annotations

import json

import anyio
import pytest
from gradient.types.shared.create_response_stream_response import ChoiceDeltaToolCall, CreateResponseStreamResponse
from starlette.testclient import TestClient
from tests.api.conftest import KEY
from tests.api.test_create import sse_chunks

from vresponses.api.errors import translate
from vresponses.api.wire import logprob_entries
from vresponses.engines.base import EngineRejected, ModelInfo, TokenLogprob, TopLogprob
from vresponses.engines.fake import FakeEngine
from vresponses.errors import InvalidRequest

M = "fake-model"
ADD = {"type": "function", "name": "add", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}
CALL = '<tool_call>\n{"name": "add", "arguments": {"a": %d}}\n</tool_call>'


def test_every_tool_call_fragment_validates_strictly(client: TestClient, fake: FakeEngine) -> None:
    text = (CALL % 1) + "\n" + (CALL % 2)
    fake.enqueue(*[text[i : i + 5] for i in range(0, len(text), 5)])
    r = client.post("/v1/responses", json={"model": M, "input": "add", "tools": [ADD], "stream": True})
    chunks = [c for c in sse_chunks(r.text) if isinstance(c, dict)]
    fragments = [tc for c in chunks for tc in (c["choices"][0]["delta"].get("tool_calls") or []) if c["choices"]]
    assert len(fragments) >= 4  # each call: its opening fragment, then its arguments
    for raw in fragments:
        typed = ChoiceDeltaToolCall.model_validate(raw, strict=True)
        assert typed.id.startswith("call_") and typed.type == "function" and typed.function.name == "add"
    for chunk in chunks:
        CreateResponseStreamResponse.model_validate(chunk)
    by_index: dict[int, str] = {}
    for raw in fragments:
        by_index[raw["index"]] = by_index.get(raw["index"], "") + raw["function"]["arguments"]
    assert [json.loads(a) for a in by_index.values()] == [{"a": 1}, {"a": 2}]


def test_parallel_tool_calls_false_returns_one_call(client: TestClient, fake: FakeEngine) -> None:
    fake.enqueue(CALL % 1, "\n", CALL % 2)
    body = client.post(
        "/v1/responses", json={"model": M, "input": "add", "tools": [ADD], "parallel_tool_calls": False}
    ).json()
    assert len(body["choices"][0]["message"]["tool_calls"]) == 1
    assert [o["type"] for o in body["output"]] == ["function_call"]


def test_model_sampling_defaults_apply_and_are_echoed(client: TestClient, fake: FakeEngine) -> None:
    fake.info = ModelInfo(
        name=M,
        max_model_len=4096,
        sampling_defaults={"temperature": 0.3, "top_p": 0.8, "top_k": 20.0, "repetition_penalty": 1.1},
    )
    body = client.post("/v1/responses", json={"model": M, "input": "hi"}).json()
    options = fake.requests[-1][2]
    assert (options.temperature, options.top_p, options.top_k, options.repetition_penalty) == (0.3, 0.8, 20, 1.1)
    assert (body["temperature"], body["top_p"]) == (0.3, 0.8)
    assert body["max_output_tokens"] == options.max_tokens == 4096 - len(fake.requests[-1][1])  # what was left
    client.post("/v1/responses", json={"model": M, "input": "hi", "temperature": 0.9})
    assert fake.requests[-1][2].temperature == 0.9  # the request's own value wins


def test_the_model_default_output_bound_applies_unless_asked_otherwise(client: TestClient, fake: FakeEngine) -> None:
    fake.info = ModelInfo(name=M, max_model_len=4096, sampling_defaults={"max_tokens": 5.0})
    body = client.post("/v1/responses", json={"model": M, "input": "hi"}).json()
    assert fake.requests[-1][2].max_tokens == 5 and body["max_output_tokens"] == 5
    client.post("/v1/responses", json={"model": M, "input": "hi", "max_output_tokens": 50})
    assert fake.requests[-1][2].max_tokens == 50


def test_neutral_defaults_are_echoed_not_null(client: TestClient) -> None:
    body = client.post("/v1/responses", json={"model": M, "input": "hi"}).json()
    assert (body["temperature"], body["top_p"]) == (1.0, 1.0)


@pytest.mark.parametrize(
    ("part", "needle"),
    [
        ({"type": "input_image", "image_url": "https://example.com/a.png"}, "no image input"),
        ({"type": "input_file", "file_id": "f"}, "no file input"),
        ({"text": "untyped"}, "needs 'type'"),
        ({"type": "input_text"}, "needs 'text'"),
        ({"type": "hologram", "text": "x"}, "'hologram' is not supported"),
    ],
)
def test_content_parts_the_model_cannot_take_are_named(client: TestClient, part: dict, needle: str) -> None:
    r = client.post("/v1/responses", json={"model": M, "input": [{"role": "user", "content": [part]}]})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert needle in error["message"] and error["param"].startswith("input[0].content[0]")


def test_reasoning_input_text_is_optional(client: TestClient) -> None:
    items = [
        {"role": "user", "content": "hi"},
        {"type": "reasoning", "content": [{"type": "reasoning_text"}]},
        {"role": "user", "content": "again"},
    ]
    assert client.post("/v1/responses", json={"model": M, "input": items}).status_code == 200


@pytest.mark.parametrize(
    ("field", "value"), [("max_output_tokens", "10"), ("stream", "true"), ("temperature", "0.5"), ("store", 1)]
)
def test_strings_are_not_numbers_or_booleans(client: TestClient, field: str, value: object) -> None:
    r = client.post("/v1/responses", json={"model": M, "input": "hi", field: value})
    assert r.status_code == 400 and r.json()["error"]["param"] == field


def test_web_search_says_it_is_not_configured(client: TestClient) -> None:
    r = client.post("/v1/responses", json={"model": M, "input": "hi", "tools": [{"type": "web_search"}]})
    assert r.status_code == 400
    assert "not configured" in r.json()["error"]["message"] and "--web-search" in r.json()["error"]["message"]


def test_exception_groups_are_unwrapped_at_the_boundary() -> None:
    group = ExceptionGroup("task group", [EngineRejected("grammar is recursive")])
    assert translate(ExceptionGroup("outer", [group])).status == 400
    assert isinstance(translate(ExceptionGroup("x", [InvalidRequest("bad", param="tools")])), InvalidRequest)


def test_logprob_bytes_are_the_token_bytes() -> None:
    half = TokenLogprob(token="\ufffd", logprob=-0.1, top=(TopLogprob("\ufffd", -0.1, b"\xf0\x9f"),), raw=b"\xf0\x9f")
    [entry] = logprob_entries([half])
    assert entry["bytes"] == [0xF0, 0x9F] and entry["top_logprobs"][0]["bytes"] == [0xF0, 0x9F]


def test_openapi_document_needs_a_key_and_describes_the_request(client: TestClient) -> None:
    assert client.get("/openapi.json", headers={"Authorization": "Bearer wrong"}).status_code == 401
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1") and "/v1/responses" in doc["paths"]
    assert "input" in doc["components"]["schemas"]["CreateResponse"]["properties"]


async def test_a_non_streaming_client_that_disconnects_aborts_cleanly(fake: FakeEngine) -> None:
    from vresponses.app import create_app
    from vresponses.settings import Settings
    from vresponses.store.memory import MemoryStore

    fake.enqueue(*"abcdefghij", delay=0.05)
    app = create_app(Settings(api_keys=(KEY,)), engine_factory=lambda _: fake, store=MemoryStore())
    body = json.dumps({"model": M, "input": "hi"}).encode()
    sent: list[dict] = []
    gone = anyio.Event()

    async def receive() -> dict:
        if not sent:
            sent.append({})
            return {"type": "http.request", "body": body, "more_body": False}
        await anyio.sleep(0.12)  # the client hangs up while the engine is generating
        gone.set()
        return {"type": "http.disconnect"}

    messages: list[dict] = []

    async def send(message: dict) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/responses",
        "headers": [(b"authorization", f"Bearer {KEY}".encode()), (b"content-type", b"application/json")],
        "query_string": b"",
        "http_version": "1.1",
        "scheme": "http",
        "server": ("t", 80),
        "client": ("c", 1),
    }
    async with app.router.lifespan_context(app):
        with anyio.fail_after(5):
            await app(scope, receive, send)
    assert gone.is_set() and fake.aborted  # the generation was stopped, not left running
    assert not [m for m in messages if m.get("status") == 500]
