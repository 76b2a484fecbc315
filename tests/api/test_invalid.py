"""Every invalid request gets its 4xx in the error shape, before any stream starts."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

M = {"model": "fake-model"}
BAD = [
    ({**M, "input": "hi", "temperature": 2.5}, "temperature"),
    ({**M, "input": "hi", "temperature": -0.1}, "temperature"),
    ({**M, "input": "hi", "top_p": 1.5}, "top_p"),
    ({**M, "input": "hi", "max_output_tokens": 0}, "max_output_tokens"),
    ({**M, "input": "hi", "max_tokens": -1}, "max_tokens"),
    ({**M, "input": "hi", "metadata": {str(i): "v" for i in range(17)}}, "metadata"),
    ({**M, "input": "hi", "metadata": {"k": "v" * 513}}, "metadata.k"),
    ({**M, "input": "hi", "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({**M, "input": "hi", "modalities": ["audio"]}, "modalities[0]"),
    ({**M, "input": "hi", "bogus": 1}, "bogus"),
    ({"input": "hi"}, "model"),
    ({**M}, "input"),
    ({**M, "input": []}, "input"),
    ({**M, "input": [{"role": "tool", "content": "x"}]}, "input[0]"),
    ({**M, "input": [{"type": "function_call", "call_id": "c"}]}, "input[0].arguments"),
    ({**M, "input": [{"type": "function_call_output", "call_id": "nope", "output": "1"}]}, "input"),
    ({**M, "input": "hi", "tools": [{"type": "function", "name": "bad name!"}]}, "tools[0].name"),
    (
        {**M, "input": "hi", "tools": [{"type": "function", "name": "a"}, {"type": "function", "name": "a"}]},
        "tools[1].name",
    ),
    (
        {**M, "input": "hi", "tools": [{"type": "function", "name": "a", "parameters": {"type": 5}}]},
        "tools[0].parameters",
    ),
    ({**M, "input": "hi", "tool_choice": "required"}, "tool_choice"),
    (
        {
            **M,
            "input": "hi",
            "tools": [{"type": "function", "name": "a"}],
            "tool_choice": {"type": "function", "function": {"name": "b"}},
        },
        "tool_choice",
    ),
    ({**M, "input": "hi", "top_logprobs": 21}, "top_logprobs"),
    ({**M, "input": "hi", "stream_options": {"include_usage": True}}, "stream_options"),
    ({**M, "input": "hi", "background": True, "store": False}, "background"),
]


@pytest.mark.parametrize(("body", "param"), BAD)
@pytest.mark.parametrize("stream", [False, True])
def test_invalid_request_is_400_naming_param(client: TestClient, body: dict, param: str, stream: bool) -> None:
    if stream and "stream_options" not in body and "background" not in body:
        body = {**body, "stream": True}
    r = client.post("/v1/responses", json=body)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param, error


def test_unknown_model_404(client: TestClient) -> None:
    r = client.post("/v1/responses", json={"model": "gpt-9", "input": "hi"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"


@pytest.mark.parametrize("raw", [b"{", b"[]", b"", b"null", b'"x"'])
def test_not_a_json_object(client: TestClient, raw: bytes) -> None:
    r = client.post("/v1/responses", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


def test_oversized_body_413(client: TestClient) -> None:
    r = client.post("/v1/responses", json={"model": "fake-model", "input": "x" * 70_000})
    assert r.status_code == 413 and "error" in r.json()


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic abc", "Bearer "])
def test_keys(client: TestClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    client.headers.pop("Authorization")
    r = client.post("/v1/responses", json={"model": "fake-model", "input": "hi"}, headers=headers)
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    assert client.get("/v1/models", headers=headers).status_code == 401
    assert client.get("/health").status_code == 200


def test_context_too_long_names_both_lengths(client: TestClient) -> None:
    r = client.post("/v1/responses", json={"model": "fake-model", "input": "y" * 5000})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "context_length_exceeded" and "4096" in error["message"]


def test_unknown_route_and_method(client: TestClient) -> None:
    assert client.get("/v1/nothing").json()["error"]["type"] == "not_found_error"
    r = client.put("/v1/responses")
    assert r.status_code == 405 and "error" in r.json()


HOSTILE = [
    b'{"model":"fake-model","input":' + b"[" * 20_000 + b"]" * 20_000 + b"}",
    b'{"model":"fake-model","input":"x","metadata":' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}",
    b'{"model":"fake-model","input":"\xff\xfe"}',
    b'{"model":"fake-model","input":"\\ud800"}',
    b'{"model":"fake-model","input":"x","temperature":NaN}',
    b'{"model":"fake-model","input":"x","temperature":1e999}',
    b'{"model":"fake-model","input":"x","tools":[{"type":"function","name":"a","parameters":'
    + b'{"type":"object","properties":{"a":' * 300
    + b"{}"
    + b"}}" * 300
    + b"}]}",
]


@pytest.mark.parametrize("raw", HOSTILE)
def test_hostile_bodies_are_400_not_500(client: TestClient, raw: bytes) -> None:
    r = client.post("/v1/responses", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["type"] == "invalid_request_error"
