"""OpenAI's dialect on the real engine and model, through openai-python and a real WebSocket client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from gradient import Gradient
from websockets.sync.client import connect

from tests.e2e.conftest import KEY, MODEL
from tests.e2e.server import Server
from tests.e2e.test_tools import CASES


@pytest.fixture(scope="module")
def oai(server: Server) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key=KEY, base_url=server.url + "/openai/v1", max_retries=0, timeout=900) as client:
        yield client


def test_create_has_output_text_and_usage(oai: openai.OpenAI) -> None:
    r = oai.responses.create(model=MODEL, input="Say hello.", max_output_tokens=16, temperature=0)
    assert r.status in ("completed", "incomplete") and r.output_text
    assert r.usage is not None and r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    assert r.output[0].type == "message" and r.output[0].content[0].type == "output_text"
    assert oai.responses.retrieve(r.id).output_text == r.output_text


def test_json_schema_output_always_validates(oai: openai.OpenAI) -> None:
    # Constrained decoding: whatever the 135M model would rather say, a completed text is JSON that fits the schema.
    # A schema's strings have no length bound, so a model may talk inside one until max_output_tokens: that response
    # must say it is incomplete, and what it holds must still be a prefix the grammar allowed.
    def ask(case: tuple[str, dict[str, Any]]) -> tuple[dict[str, Any], Any]:
        prompt, tool = case
        schema = tool["parameters"]
        fmt = {"type": "json_schema", "name": tool["name"], "schema": schema, "strict": True}
        r = oai.responses.create(model=MODEL, input=prompt, text={"format": fmt}, max_output_tokens=800, temperature=0)  # type: ignore[arg-type]
        return schema, r

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(ask, CASES))
    completed = 0
    for schema, r in results:
        if r.status == "completed":
            jsonschema.validate(json.loads(r.output_text), schema)
            completed += 1
        else:
            assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens"
            assert r.output_text.lstrip().startswith("{") and r.usage.output_tokens == 800
    assert len(results) == 20
    assert completed >= 15, f"only {completed} of 20 completed within 800 tokens"


def test_stream_typed_events_and_final_response(oai: openai.OpenAI) -> None:
    with oai.responses.stream(model=MODEL, input="Count from 1 to 5.", max_output_tokens=60, temperature=0) as stream:
        events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    # The SDK's get_final_response() wants response.completed; a turn cut by max_output_tokens ends incomplete.
    terminal = events[-1]
    assert terminal.type in ("response.completed", "response.incomplete")
    final = terminal.response  # type: ignore[union-attr]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == final.output_text == oai.responses.retrieve(final.id).output_text
    added = next(e for e in events if e.type == "response.output_item.added")
    assert added.item.id == final.output[0].id


def test_forced_tool_call_in_this_dialect(oai: openai.OpenAI) -> None:
    prompt, tool = CASES[0]
    r = oai.responses.create(model=MODEL, input=prompt, tools=[tool], tool_choice="required", max_output_tokens=200)  # type: ignore[list-item]
    calls = [o for o in r.output if o.type == "function_call"]
    assert calls and calls[0].name == tool["name"]
    jsonschema.validate(json.loads(calls[0].arguments), tool["parameters"])


def test_chain_across_both_dialects(server: Server, client: Gradient, oai: openai.OpenAI) -> None:
    first = client.responses.create(model=MODEL, input="My name is Ada.", max_output_tokens=16, temperature=0)
    second = oai.responses.create(
        model=MODEL, input="What is my name?", previous_response_id=first.id, max_output_tokens=16, temperature=0
    )
    assert second.previous_response_id == first.id and second.usage is not None
    # The second turn's prompt holds the first: the prefix cache saw it.
    assert second.usage.input_tokens > first.usage.input_tokens
    again = httpx.get(f"{server.url}/v1/responses/{second.id}", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert again["choices"][0]["message"]["content"] == second.output_text


def test_logprob_bytes_spell_the_text(oai: openai.OpenAI) -> None:
    r = oai.responses.create(
        model=MODEL,
        input="Write the word café and a smiley emoji.",
        max_output_tokens=24,
        temperature=0,
        top_logprobs=2,
        include=["message.output_text.logprobs"],
    )
    part = r.output[0].content[0]
    assert part.type == "output_text" and part.logprobs
    raw = b"".join(bytes(lp.bytes) for lp in part.logprobs)
    assert raw.decode() == part.text  # byte-level pieces of a character join into its UTF-8


def test_websocket_turns_on_one_connection(server: Server) -> None:
    url = server.url.replace("http://", "ws://") + "/openai/v1/responses"
    with connect(url, additional_headers={"Authorization": f"Bearer {KEY}"}, open_timeout=30) as ws:
        ids = []
        for text in ("Remember the word cobalt.", "What word?"):
            body = {
                "type": "response.create",
                "model": MODEL,
                "store": False,
                "input": text,
                "max_output_tokens": 16,
                "temperature": 0,
            }
            if ids:
                body["previous_response_id"] = ids[-1]
            ws.send(json.dumps(body))
            terminal = ("response.completed", "response.incomplete", "error")
            while (event := json.loads(ws.recv(timeout=120)))["type"] not in terminal:
                pass
            assert event["type"] != "error", event
            ids.append(event["response"]["id"])
    with pytest.raises(openai.NotFoundError):
        openai.OpenAI(api_key=KEY, base_url=server.url + "/openai/v1", max_retries=0).responses.retrieve(ids[0])
