"""POST /v1/responses on the fake engine: the response shape, streaming, and that both come from one path."""

from __future__ import annotations

import json

from starlette.testclient import TestClient

from vresponses.engines.fake import FakeEngine


def sse_chunks(text: str) -> list[dict | str]:
    out: list[dict | str] = []
    for line in text.splitlines():
        if line.startswith("data: "):
            data = line[6:]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def test_non_streaming_hybrid_shape(client: TestClient, fake: FakeEngine) -> None:
    fake.enqueue("Hello", ", ", "world")
    r = client.post("/v1/responses", json={"model": "fake-model", "input": "hi", "metadata": {"k": "v"}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "response"
    assert body["id"].startswith("resp_")
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Hello, world"}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["output"] == [{"type": "text", "text": "Hello, world"}]
    assert body["usage"]["output_tokens"] == 3
    assert body["usage"]["total_tokens"] == body["usage"]["input_tokens"] + 3
    assert body["metadata"] == {"k": "v"}
    assert body["status"] == "completed"
    assert body["background"] is False and body["previous_response_id"] is None


def test_stream_matches_non_streaming(client: TestClient, fake: FakeEngine) -> None:
    fake.enqueue("Hel", "lo")
    plain = client.post("/v1/responses", json={"model": "fake-model", "input": "hi"}).json()
    fake.enqueue("Hel", "lo")
    r = client.post(
        "/v1/responses",
        json={"model": "fake-model", "input": "hi", "stream": True, "stream_options": {"include_usage": True}},
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    chunks = sse_chunks(r.text)
    assert chunks[-1] == "[DONE]"
    objs = [c for c in chunks if isinstance(c, dict)]
    assert objs[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["object"] == "response.chunk" and c["id"] == objs[0]["id"] for c in objs)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in objs if c["choices"])
    assert text == plain["choices"][0]["message"]["content"] == "Hello"
    finals = [c for c in objs if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(finals) == 1 and finals[0]["choices"][0]["finish_reason"] == "stop"
    usage = objs[-1]
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == 2
    assert all(c["usage"] is None for c in objs[:-1])


def test_length_finish_and_max_tokens_alias(client: TestClient, fake: FakeEngine) -> None:
    fake.enqueue("a", "b", "c", "d")
    body = client.post("/v1/responses", json={"model": "fake-model", "input": "hi", "max_tokens": 2}).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["choices"][0]["message"]["content"] == "ab"
    assert body["status"] == "incomplete"
    assert body["max_output_tokens"] == 2


def test_max_tokens_zero_generates_nothing(client: TestClient, fake: FakeEngine) -> None:
    body = client.post("/v1/responses", json={"model": "fake-model", "input": "hi", "max_tokens": 0}).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["output_tokens"] == 0
    assert fake.requests == []


def test_sampling_options_reach_engine(client: TestClient, fake: FakeEngine) -> None:
    client.post(
        "/v1/responses",
        json={"model": "fake-model", "input": "hi", "temperature": 0.5, "top_p": 0.9, "stop": ["x", ""]},
    )
    options = fake.requests[-1][2]
    assert (options.temperature, options.top_p, options.stop) == (0.5, 0.9, ("x",))
    client.post("/v1/responses", json={"model": "fake-model", "input": "hi", "top_p": 0})
    assert fake.requests[-1][2].temperature == 0.0


def test_instructions_render_first_as_system(client: TestClient, fake: FakeEngine) -> None:
    client.post("/v1/responses", json={"model": "fake-model", "input": "hi", "instructions": "Be terse."})
    prompt = "".join(chr(i) for i in fake.requests[-1][1])
    assert prompt.startswith("<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nhi")
    assert prompt.endswith("<|im_start|>assistant\n")


def test_logprobs_only_when_asked(client: TestClient, fake: FakeEngine) -> None:
    fake.enqueue("a", "b")
    body = client.post("/v1/responses", json={"model": "fake-model", "input": "hi"}).json()
    assert body["choices"][0]["logprobs"] is None and fake.requests[-1][2].logprobs is None
    fake.enqueue("a", "b")
    body = client.post("/v1/responses", json={"model": "fake-model", "input": "hi", "top_logprobs": 2}).json()
    entries = body["choices"][0]["logprobs"]["content"]
    assert [e["token"] for e in entries] == ["a", "b"]
    assert body["top_logprobs"] == 2


def test_engine_failure_mid_stream_is_an_error_event(client: TestClient, fake: FakeEngine) -> None:
    fake.enqueue("a", "b", "c", fail_after=1)
    r = client.post("/v1/responses", json={"model": "fake-model", "input": "hi", "stream": True})
    chunks = sse_chunks(r.text)
    assert "[DONE]" not in chunks
    assert chunks[-1]["error"]["type"] == "service_unavailable"


def test_engine_rejection_before_first_token_is_a_plain_error(client: TestClient, fake: FakeEngine) -> None:
    fake.enqueue("a", fail_after=0)
    r = client.post("/v1/responses", json={"model": "fake-model", "input": "hi", "stream": True})
    assert r.status_code == 503 and r.headers["content-type"] == "application/json"
    assert r.json()["error"]["type"] == "service_unavailable"


def test_engine_dead_health_503(client: TestClient, fake: FakeEngine) -> None:
    assert client.get("/health").status_code == 200
    fake.alive = False
    r = client.get("/health")
    assert r.status_code == 503 and r.json()["error"]["type"] == "service_unavailable"
