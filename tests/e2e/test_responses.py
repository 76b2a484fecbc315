"""Issue 2 through the real gradient SDK against the real engine and model."""

from __future__ import annotations

import time

import gradient
import httpx
import pytest
from gradient import Gradient

from tests.e2e.conftest import KEY, MODEL
from tests.e2e.server import Server

Q = "What is the capital of France?"


def streamed_text(stream) -> tuple[str, list]:  # type: ignore[no-untyped-def]
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks


def test_create_returns_hybrid_response(client: Gradient) -> None:
    r = client.responses.create(
        model=MODEL, input=Q, temperature=0, max_output_tokens=40, metadata={"a": "b"}, user="u-1", top_p=0.9
    )
    assert r.object == "response" and r.model == MODEL
    text = r.choices[0].message.content
    assert "Paris" in text
    assert r.output[0].type == "text" and r.output[0].text == text
    assert r.choices[0].finish_reason == "stop"
    u = r.usage
    assert u.input_tokens > 10 and 0 < u.output_tokens <= 40
    assert u.total_tokens == u.input_tokens + u.output_tokens
    assert (r.temperature, r.top_p, r.max_output_tokens, r.user, r.metadata) == (0, 0.9, 40, "u-1", {"a": "b"})
    assert r.status == "completed" and r.background is False


def test_stream_equals_non_stream_at_temperature_zero(client: Gradient) -> None:
    kwargs = {"model": MODEL, "input": "Tell me a short story about a cat.", "temperature": 0, "max_output_tokens": 60}
    plain = client.responses.create(**kwargs)
    text, chunks = streamed_text(client.responses.create(**kwargs, stream=True))
    assert text == plain.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].object == "response.chunk"
    assert len({c.id for c in chunks}) == 1 and len({c.created for c in chunks}) == 1
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[-1] is chunks[-1]
    assert finals[0].choices[0].finish_reason == plain.choices[0].finish_reason
    assert all(c.usage is None for c in chunks)


def test_include_usage_adds_a_last_chunk(client: Gradient) -> None:
    stream = client.responses.create(
        model=MODEL, input=Q, temperature=0, max_output_tokens=20, stream=True, stream_options={"include_usage": True}
    )
    _, chunks = streamed_text(stream)
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens > 0 and last.usage.prompt_tokens > 10
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_stop_sequence_never_in_output(client: Gradient) -> None:
    kwargs = {"model": MODEL, "input": "Tell me a short story about a cat.", "temperature": 0, "max_output_tokens": 60}
    full = client.responses.create(**kwargs).choices[0].message.content
    words = full.split()
    stop = words[len(words) // 2]
    assert len(words) > 6 and stop in full
    cut = client.responses.create(**kwargs, stop=[stop, "zzzz"])
    text = cut.choices[0].message.content
    assert stop not in text and full.startswith(text)
    assert cut.choices[0].finish_reason == "stop"
    streamed, _ = streamed_text(client.responses.create(**kwargs, stop=stop, stream=True))
    assert streamed == text


def test_length_finish(client: Gradient) -> None:
    r = client.responses.create(model=MODEL, input="Write a long essay about the sea.", max_tokens=5, temperature=0)
    assert r.choices[0].finish_reason == "length"
    assert r.usage.output_tokens == 5
    assert r.status == "incomplete"


def test_cached_tokens_on_repeated_long_prompt(client: Gradient) -> None:
    long = "Here is a list of facts about the ocean. " * 60 + "Summarize."
    first = client.responses.create(model=MODEL, input=long, max_output_tokens=5, temperature=0)
    second = client.responses.create(model=MODEL, input=long, max_output_tokens=5, temperature=0)
    assert first.usage.input_tokens > 500
    assert second.usage.input_tokens_details.cached_tokens > 0.5 * second.usage.input_tokens


def test_sampling_varies_with_temperature(client: Gradient) -> None:
    kwargs = {"model": MODEL, "input": "Name a color.", "max_output_tokens": 30}
    outs = {client.responses.create(**kwargs, temperature=1.5).choices[0].message.content for _ in range(4)}
    assert len(outs) > 1
    greedy = {client.responses.create(**kwargs, temperature=0).choices[0].message.content for _ in range(2)}
    assert len(greedy) == 1


def test_instructions_and_conversation(client: Gradient) -> None:
    r = client.responses.create(
        model=MODEL,
        instructions="You only ever answer with the single word: banana.",
        input=[
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "banana"},
            {"role": "user", "content": [{"type": "input_text", "text": "What do you say?"}]},
        ],
        temperature=0,
        max_output_tokens=10,
    )
    assert r.choices[0].message.content


def test_disconnect_aborts_engine_request(server: Server) -> None:
    body = {"model": MODEL, "input": "Write a very long story.", "max_output_tokens": 2000, "stream": True}
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.stream("POST", server.url + "/v1/responses", json=body, headers=headers, timeout=60) as r:
        lines = r.iter_lines()
        got = [next(lines) for _ in range(6)]
        assert any(line.startswith("data: ") for line in got)
        assert server.unfinished() >= 1
    deadline = time.monotonic() + 10
    while server.unfinished() > 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server.unfinished() == 0


def test_non_streaming_disconnect_aborts_too(server: Server) -> None:
    body = {"model": MODEL, "input": "Write a very long story.", "max_output_tokens": 2000}
    headers = {"Authorization": f"Bearer {KEY}"}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(server.url + "/v1/responses", json=body, headers=headers, timeout=httpx.Timeout(60, read=2))
    deadline = time.monotonic() + 10
    while server.unfinished() > 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server.unfinished() == 0


def test_models_and_health(server: Server) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    models = httpx.get(server.url + "/v1/models", headers=headers).json()
    assert models["data"][0]["id"] == MODEL
    assert httpx.get(server.url + "/health").status_code == 200


BAD = [
    ({"temperature": 3}, 400),
    ({"top_p": -1}, 400),
    ({"max_output_tokens": 0}, 400),
    ({"metadata": {f"k{i}": "v" for i in range(17)}}, 400),
    ({"stop": ["a", "b", "c", "d", "e"]}, 400),
    ({"modalities": ["image"]}, 400),
    ({"tools": [{"type": "function", "name": "has space"}]}, 400),
    ({"tool_choice": "required"}, 400),
    ({"input": "word " * 5000}, 400),
    ({"model": "no-such-model"}, 404),
]


@pytest.mark.parametrize(("extra", "status"), BAD)
@pytest.mark.parametrize("stream", [False, True])
def test_invalid_requests_through_sdk(client: Gradient, extra: dict, status: int, stream: bool) -> None:
    kwargs = {"model": MODEL, "input": Q, **extra}
    with pytest.raises(gradient.APIStatusError) as info:
        if stream:
            list(client.responses.create(**kwargs, stream=True))
        else:
            client.responses.create(**kwargs)
    assert info.value.status_code == status
    error = info.value.body.get("error", info.value.body)
    assert set(error) == {"message", "type", "param", "code"}


def test_unknown_parameter_named(client: Gradient) -> None:
    with pytest.raises(gradient.BadRequestError) as info:
        client.responses.create(model=MODEL, input=Q, extra_body={"frobnicate": True})
    assert "frobnicate" in str(info.value)


def test_wrong_key_401(server: Server) -> None:
    with (
        Gradient(model_access_key="nope", base_url=server.url + "/v1", max_retries=0) as bad,
        pytest.raises(gradient.AuthenticationError),
    ):
        bad.responses.create(model=MODEL, input=Q)
