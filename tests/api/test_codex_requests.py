"""Codex CLI's requests on the fake engine: the shapes Codex 0.171.0 sends, and the items it needs back.

What Codex sends (measured against a capture server): `stream`, `store: false`, `include:
["reasoning.encrypted_content"]`, `reasoning: {"summary": "auto"}`, `prompt_cache_key`, `client_metadata`,
`parallel_tool_calls`, `tool_choice: "auto"`, `developer` messages with ids, function tools, a `namespace` tool of
functions, a freeform `custom` tool (`apply_patch`, with a grammar) and `web_search` with `external_web_access`;
each later turn hands every earlier item back (reasoning with `encrypted_content`, `function_call` with its
`namespace`, `custom_tool_call`, `custom_tool_call_output`). Codex runs a freeform tool only from a
`custom_tool_call` item, and a namespaced function only when the call names its `namespace`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from openai import OpenAI
from starlette.testclient import TestClient
from tests.api.conftest import KEY
from tests.api.test_openai_dialect import sse

from vresponses.engines.fake import FakeEngine
from vresponses.pipeline.sealed import seal

M = "fake-model"
PATCH = "*** Begin Patch\n*** Add File: a.txt\n+hello\n*** End Patch\n"
SHELL = {
    "type": "function",
    "name": "exec_command",
    "description": "Runs a command.",
    "strict": False,
    "parameters": {
        "type": "object",
        "properties": {"cmd": {"type": "string"}},
        "required": ["cmd"],
        "additionalProperties": False,
    },
}
AGENTS = {
    "type": "namespace",
    "name": "multi_agent_v1",
    "description": "Tools for sub-agents.",
    "tools": [
        {
            "type": "function",
            "name": "close_agent",
            "description": "Close an agent.",
            "strict": False,
            "parameters": {"type": "object", "properties": {"target": {"type": "string"}}, "required": ["target"]},
        }
    ],
}
APPLY_PATCH = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Edit files. This is a FREEFORM tool.",
    "format": {"type": "grammar", "syntax": "lark", "definition": 'start: "*** Begin Patch" LF'},
}
WEB_SEARCH = {"type": "web_search", "external_web_access": False, "search_content_types": ["text", "image"]}


def call(name: str, arguments: dict[str, Any]) -> str:
    """The fake model's output for one call, in the default (Hermes) format."""
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"


def codex_body(
    user: str, tools: list[dict[str, Any]], history: list[dict[str, Any]] | None = None, developer: str = ""
) -> dict[str, Any]:
    """A request as Codex writes one."""
    return {
        "model": M,
        "stream": True,
        "input": [
            {
                "type": "message",
                "id": "msg_d2163ecc-6792-579d-a85b-d52addab7bcb",
                "role": "developer",
                "content": [{"type": "input_text", "text": developer or "You are a coding agent."}],
            },
            {"type": "message", "id": "msg_01a2-u", "role": "user", "content": [{"type": "input_text", "text": user}]},
            *(history or []),
        ],
        "tools": tools,
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"summary": "auto"},
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "01a23ab7-f4f8-7ef1-9fd0-cfec426acc01",
        "client_metadata": {
            "session_id": "01a23ab7-f4f8-7ef1-9fd0-cfec426acc01",
            "x-codex-turn-metadata": json.dumps({"turn_id": "t", "workspaces": {"/tmp/w": {"has_changes": False}}}),
        },
    }


@pytest.fixture
def sdk(client: TestClient) -> Iterator[OpenAI]:
    yield OpenAI(api_key=KEY, base_url="http://testserver/openai/v1", http_client=client, max_retries=0)


def prompt_of(fake: FakeEngine) -> str:
    return "".join(chr(t) for t in fake.requests[-1][1])


def test_a_prompt_over_the_context_is_context_length_exceeded_before_anything_else(client: TestClient) -> None:
    # Codex's default request is larger than a small model's context and asks for web search, which this server
    # has not configured: the answer Codex understands is the context error (it reports it and stops).
    body = codex_body("hi", [SHELL, AGENTS, APPLY_PATCH, WEB_SEARCH], developer="x" * 5000)
    r = client.post("/openai/v1/responses", json=body)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "context_length_exceeded" and error["type"] == "invalid_request_error"
    assert "4096" in error["message"]


def test_web_search_that_fits_is_still_a_400_naming_the_flag(client: TestClient) -> None:
    r = client.post("/openai/v1/responses", json=codex_body("hi", [SHELL, WEB_SEARCH]))
    assert r.status_code == 400 and "--web-search" in r.json()["error"]["message"]


def test_every_codex_tool_kind_is_offered_as_a_function(client: TestClient, fake: FakeEngine) -> None:
    fake.enqueue("Hello.")
    r = client.post("/openai/v1/responses", json=codex_body("hi", [SHELL, AGENTS, APPLY_PATCH]))
    assert r.status_code == 200
    kinds = [k for k, _ in sse(r.text)]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    prompt = prompt_of(fake)
    for name in ("exec_command", "close_agent", "apply_patch"):
        assert f'"name": "{name}"' in prompt
    assert "You are a coding agent." in prompt  # developer messages are system text
    # The echo shows the tools as declared: the namespace regrouped, the freeform tool as `custom` (free text).
    tools = sse(r.text)[-1][1]["response"]["tools"]
    assert [t["type"] for t in tools] == ["function", "namespace", "custom"]
    assert tools[1]["name"] == "multi_agent_v1" and [t["name"] for t in tools[1]["tools"]] == ["close_agent"]
    assert tools[2]["format"] == {"type": "text"}


def test_a_freeform_tool_call_is_a_custom_tool_call_with_its_text_input(client: TestClient, fake: FakeEngine) -> None:
    fake.enqueue("Editing. ", call("apply_patch", {"input": PATCH}))
    r = client.post("/openai/v1/responses", json=codex_body("add a.txt", [SHELL, APPLY_PATCH]))
    events = sse(r.text)
    kinds = [k for k, _ in events]
    assert "response.function_call_arguments.delta" not in kinds
    assert "response.function_call_arguments.done" not in kinds
    added = [d["item"] for k, d in events if k == "response.output_item.added"]
    assert [i["type"] for i in added] == ["message", "custom_tool_call"]
    assert added[1]["input"] == "" and added[1]["name"] == "apply_patch" and added[1]["id"].startswith("ctc_")
    deltas = [d["delta"] for k, d in events if k == "response.custom_tool_call_input.delta"]
    [done] = [d for k, d in events if k == "response.custom_tool_call_input.done"]
    assert "".join(deltas) == done["input"] == PATCH and done["item_id"] == added[1]["id"]
    [item] = [d["item"] for k, d in events if k == "response.output_item.done" and d["output_index"] == 1]
    assert item == {
        "type": "custom_tool_call",
        "id": added[1]["id"],
        "call_id": added[1]["call_id"],
        "name": "apply_patch",
        "input": PATCH,
        "status": "completed",
    }
    assert events[-1][1]["response"]["output"][1] == item


def test_the_sdk_reads_a_custom_tool_call(sdk: OpenAI, fake: FakeEngine) -> None:
    fake.enqueue(call("apply_patch", {"input": PATCH}))
    with sdk.responses.stream(model=M, input="edit", tools=[APPLY_PATCH]) as stream:  # type: ignore[list-item]
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert "response.custom_tool_call_input.done" in kinds
    [item] = final.output
    assert item.type == "custom_tool_call" and item.input == PATCH and item.name == "apply_patch"


@pytest.mark.parametrize(
    ("name", "arguments", "namespace"),
    [("close_agent", {"target": "a1"}, "multi_agent_v1"), ("exec_command", {"cmd": "ls"}, None)],
)
def test_a_namespaced_function_call_names_its_namespace(
    client: TestClient, fake: FakeEngine, name: str, arguments: dict[str, str], namespace: str | None
) -> None:
    fake.enqueue(call(name, arguments))
    r = client.post("/openai/v1/responses", json=codex_body("do it", [SHELL, AGENTS]))
    events = sse(r.text)
    [added] = [d["item"] for k, d in events if k == "response.output_item.added"]
    [done] = [d["item"] for k, d in events if k == "response.output_item.done"]
    assert added.get("namespace") == done.get("namespace") == namespace
    assert done["type"] == "function_call" and json.loads(done["arguments"]) == arguments


def test_the_next_turn_hands_every_item_back(client: TestClient, fake: FakeEngine) -> None:
    # What Codex's second request holds after a reasoning item, a namespaced call and a freeform call (store: false,
    # so the server knows the conversation only from this input).
    history = [
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": seal("I should look first.")},
        {
            "type": "function_call",
            "status": "completed",
            "id": "fc_1",
            "namespace": "multi_agent_v1",
            "name": "close_agent",
            "arguments": '{"target":"a1"}',
            "call_id": "call_1",
        },
        {"type": "function_call_output", "id": "fco_01a2", "call_id": "call_1", "output": "agent a1 closed"},
        {
            "type": "custom_tool_call",
            "id": "ctc_1",
            "status": "completed",
            "call_id": "call_2",
            "name": "apply_patch",
            "input": PATCH,
        },
        {"type": "custom_tool_call_output", "id": "ctco_01a2", "call_id": "call_2", "output": "Success. A a.txt"},
    ]
    fake.enqueue("Done.")
    r = client.post("/openai/v1/responses", json=codex_body("go", [SHELL, AGENTS, APPLY_PATCH], history))
    assert r.status_code == 200 and sse(r.text)[-1][0] == "response.completed"
    prompt = prompt_of(fake)
    # The freeform call is rendered as the one-string function call the model was offered.
    rendered_patch = json.dumps({"name": "apply_patch", "arguments": {"input": PATCH}})
    assert prompt.index("close_agent") < prompt.index("agent a1 closed") < prompt.index(rendered_patch)
    assert prompt.index(rendered_patch) < prompt.index("Success. A a.txt")


def test_handed_back_custom_items_are_listed_as_given(client: TestClient, fake: FakeEngine) -> None:
    fake.enqueue("ok")
    items = [
        {"type": "message", "role": "user", "content": "edit"},
        {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": PATCH},
        {"type": "custom_tool_call_output", "call_id": "c1", "output": "done"},
    ]
    body = {"model": M, "input": items, "tools": [APPLY_PATCH]}
    created = client.post("/openai/v1/responses", json=body).json()
    listed = client.get(f"/openai/v1/responses/{created['id']}/input_items?order=asc").json()["data"]
    assert [i["type"] for i in listed] == ["message", "custom_tool_call", "custom_tool_call_output"]
    assert listed[1]["input"] == PATCH and listed[2]["output"] == "done"


def test_the_gradient_dialect_shows_a_custom_call_as_a_chat_tool_call(client: TestClient, fake: FakeEngine) -> None:
    fake.enqueue(call("apply_patch", {"input": PATCH}))
    body = {"model": M, "input": "edit", "tools": [APPLY_PATCH]}
    r = client.post("/v1/responses", json=body).json()
    [tool_call] = r["choices"][0]["message"]["tool_calls"]
    assert tool_call["function"]["name"] == "apply_patch"
    assert json.loads(tool_call["function"]["arguments"]) == {"input": PATCH}
    # The same stored response, read in OpenAI's dialect, is the freeform call.
    item = client.get(f"/openai/v1/responses/{r['id']}").json()["output"][0]
    assert item["type"] == "custom_tool_call" and item["input"] == PATCH


def test_bad_handed_back_items_name_the_field(client: TestClient) -> None:
    body = codex_body("go", [SHELL], [{"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch"}])
    r = client.post("/openai/v1/responses", json=body)
    assert r.status_code == 400 and r.json()["error"]["param"] == "input[2].input"


def test_a_replayed_stream_shows_the_custom_call_as_streamed(client: TestClient, fake: FakeEngine) -> None:
    fake.enqueue(call("apply_patch", {"input": PATCH}))
    body = {"model": M, "input": "edit", "tools": [APPLY_PATCH], "stream": True}
    live = sse(client.post("/openai/v1/responses", json=body).text)
    replayed = sse(client.get(f"/openai/v1/responses/{live[-1][1]['response']['id']}?stream=true").text)
    assert [k for k, _ in replayed] == [k for k, _ in live]
    assert [d for k, d in replayed if k == "response.output_item.done"] == [
        d for k, d in live if k == "response.output_item.done"
    ]


def test_a_custom_call_without_an_input_argument_hands_over_what_the_model_wrote(
    client: TestClient, fake: FakeEngine
) -> None:
    # An unconstrained small model may name the freeform tool with other arguments: the client gets them as written.
    fake.enqueue(call("apply_patch", {"patch": "x"}))
    r = client.post("/openai/v1/responses", json={"model": M, "input": "edit", "tools": [APPLY_PATCH]}).json()
    [item] = r["output"]
    assert item["type"] == "custom_tool_call" and json.loads(item["input"]) == {"patch": "x"}


def test_tool_kinds_this_server_cannot_offer_are_a_400_naming_the_type(client: TestClient) -> None:
    for kind in ("local_shell", "tool_search"):
        r = client.post("/openai/v1/responses", json=codex_body("hi", [SHELL, {"type": kind}]))
        assert r.status_code == 400 and kind in r.json()["error"]["message"]
        assert r.json()["error"]["param"] == "tools[1]"
