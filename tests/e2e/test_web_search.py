"""Issue 10 end to end: the built-in web_search on the real engine and model, searching a SearXNG-compatible stub
(test_web_search_local.py: the offline index), driven by the gradient SDK, the openai SDK and httpx.

One server per provider kind. Sampling is greedy, so what the model writes is fixed for these prompts; the assertions
hold for whatever it writes (the query it chose is read back from the provider's side).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from gradient import Gradient
from transformers import PreTrainedTokenizerBase

from tests.e2e.conftest import KEY, MODEL
from tests.e2e.search_support import FORCE, MAX, QUESTION, RESULTS, SOURCES, WEB, create, tokenizer, tokens
from tests.e2e.server import Server
from tests.websearch.searxng_stub import SearxngStub, canned_results

__all__ = ["tokenizer"]  # a shared fixture, used here by name

TIMEOUT = 3.0


def openai_stream(server: Server, **body: Any) -> list[tuple[float, Any]]:
    """Every event of an OpenAI-dialect stream, with the time it arrived."""
    params: dict[str, Any] = {"model": MODEL, "input": QUESTION, "tools": [WEB], "temperature": 0}
    params |= {"max_output_tokens": MAX, "include": [SOURCES, RESULTS], **body}
    with openai.OpenAI(api_key=KEY, base_url=server.url + "/openai/v1", max_retries=0, timeout=600) as oai:
        return [(time.monotonic(), event) for event in oai.responses.create(stream=True, **params)]


def searched(body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The response's one web_search_call (first in output) and the text of its answer after it."""
    search, *rest = body["output"]
    assert search["type"] == "web_search_call", body["output"]
    return search, "".join(o["text"] for o in rest if o["type"] == "text")


@pytest.fixture(scope="module")
def stub() -> Iterator[SearxngStub]:
    with SearxngStub() as stub:
        yield stub


@pytest.fixture(scope="module")
def server(stub: SearxngStub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("searxng")
    extra = ("--web-search", f"searxng={stub.url}", "--web-search-timeout", str(TIMEOUT))
    srv = Server(f"sqlite:///{base / 'responses.db'}", KEY, base / "server.log", *extra)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def healthy_stub(stub: SearxngStub) -> Iterator[None]:
    stub.mode = "ok"
    yield
    stub.mode = "ok"


def test_forced_search_then_answer(server: Server, stub: SearxngStub, tokenizer: PreTrainedTokenizerBase) -> None:
    body = create(server, tool_choice=FORCE, include=[RESULTS])
    search, answer = searched(body)
    query = search["action"]["query"]
    assert search["status"] == "completed" and search["id"].startswith("ws_") and query
    assert stub.queries[-1] == " ".join(query.split())  # the model's query is what the provider was asked
    assert [s["url"] for s in search["action"]["sources"]] == [h["url"] for h in canned_results(stub.queries[-1])]
    assert answer and body["choices"][0]["message"]["content"] == answer
    usage = body["usage"]
    assert usage["output_tokens_details"]["tool_output_tokens"] == tokens(tokenizer, search["results"]) > 0
    assert usage["input_tokens"] > usage["output_tokens_details"]["tool_output_tokens"]


def test_openai_stream_shows_the_search_then_the_answer(server: Server) -> None:
    events = openai_stream(server, tool_choice=FORCE)
    kinds = [e.type for _, e in events]
    first_text = kinds.index("response.output_text.delta")
    assert kinds.index("response.web_search_call.completed") < first_text
    assert kinds.index("response.web_search_call.searching") < kinds.index("response.web_search_call.completed")
    final = events[-1][1]
    assert final.type in ("response.completed", "response.incomplete")
    deltas = "".join(e.delta for _, e in events if e.type == "response.output_text.delta")
    call, message = final.response.output[0], final.response.output[1]
    assert call.type == "web_search_call" and call.status == "completed" and call.action.query
    assert [s.url for s in call.action.sources] == [h["url"] for h in canned_results(call.action.query)]
    assert message.type == "message" and message.content[0].text == deltas != ""
    stored = httpx.get(
        f"{server.url}/openai/v1/responses/{final.response.id}", headers={"Authorization": f"Bearer {KEY}"}
    ).json()
    assert stored["output"][1]["content"][0]["text"] == deltas


def test_gradient_stream_shows_only_the_answer(server: Server) -> None:
    with Gradient(model_access_key=KEY, base_url=server.url + "/v1", max_retries=0, timeout=600) as client:
        stream = client.responses.create(
            model=MODEL,
            input=QUESTION,
            tools=[WEB],
            max_output_tokens=MAX,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"tool_choice": FORCE},
        )
        chunks = list(stream)
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert not any(d.tool_calls for d in deltas)  # the server ran the search; nothing is the client's to run
    text = "".join(d.content or "" for d in deltas)
    usage = chunks[-1].usage
    assert text and usage is not None
    stored = httpx.get(f"{server.url}/v1/responses/{chunks[0].id}", headers={"Authorization": f"Bearer {KEY}"})
    body = stored.json()
    assert body["choices"][0]["message"]["content"] == text
    assert usage.prompt_tokens == body["usage"]["input_tokens"]
    assert searched(body)[0]["status"] == "completed"


@pytest.mark.parametrize("mode", ["error", "hang"])
def test_failing_provider_is_a_failed_search_within_the_timeout(server: Server, stub: SearxngStub, mode: Any) -> None:
    stub.mode = mode
    asked = len(stub.queries)
    events = openai_stream(server, tool_choice=FORCE)
    searching = next(t for t, e in events if e.type == "response.web_search_call.searching")
    done_at, done = next((t, e) for t, e in events if e.type == "response.output_item.done")
    assert done.item.type == "web_search_call" and done.item.status == "failed"
    assert done_at - searching < TIMEOUT + 2.0
    assert len(stub.queries) == asked + 1
    final = events[-1][1]
    assert final.type in ("response.completed", "response.incomplete")
    assert "The search failed" in final.response.output[0].model_extra["results"]


def test_chain_keeps_the_search_items(server: Server, tokenizer: PreTrainedTokenizerBase) -> None:
    first = create(server, tool_choice=FORCE, include=[RESULTS])
    search, _ = searched(first)
    # The same tools, so the history is the same prompt prefix; 8 tokens cannot hold a second search call.
    follow = {"input": "Say it again.", "max_output_tokens": 8, "tools": [WEB]}
    second = create(server, previous_response_id=first["id"], **follow)
    headers = {"Authorization": f"Bearer {KEY}"}

    def count(**body: Any) -> int:
        payload = {"model": MODEL, **follow, **body}
        r = httpx.post(f"{server.url}/v1/responses/input_tokens", json=payload, headers=headers)
        return int(r.json()["input_tokens"])

    chained, alone = count(previous_response_id=first["id"]), count()
    assert second["usage"]["input_tokens"] == chained
    assert chained - alone > tokens(tokenizer, search["results"])  # the next turn read what was found
    assert second["usage"]["input_tokens_details"]["cached_tokens"] > 0
    stored = httpx.get(f"{server.url}/openai/v1/responses/{first['id']}", headers=headers).json()
    assert stored["output"][0]["type"] == "web_search_call"
    assert stored["output"][0]["action"]["query"] == search["action"]["query"]
