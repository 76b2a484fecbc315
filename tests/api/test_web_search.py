"""Built-in web_search on the fake engine and a fake provider: the loop, its bounds, failures, both dialects."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

import pytest
from openai import OpenAI
from starlette.testclient import TestClient
from tests.api.conftest import KEY
from tests.api.test_create import sse_chunks
from tests.api.test_openai_dialect import sse

from vresponses.app import create_app
from vresponses.engines.fake import FakeEngine
from vresponses.pipeline.jobs import JobsConfig
from vresponses.pipeline.search import LAST_SEARCH
from vresponses.settings import Settings
from vresponses.store.memory import MemoryStore
from vresponses.websearch import SearchError, SearchResult

M = "fake-model"
WEB = {"type": "web_search"}
ADD = {"type": "function", "name": "add", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}
ADD_CALL = '<tool_call>\n{"name": "add", "arguments": {"a": 1}}\n</tool_call>'
RESULTS = "web_search_call.results"


def search_call(query: str) -> str:
    call = {"name": "web_search", "arguments": {"query": query}}
    return f"<tool_call>\n{json.dumps(call)}\n</tool_call>"


class FakeProvider:
    """Answers every query with two hits that name it, or fails, hangs or breaks as the test chooses."""

    name = "fake"

    def __init__(self) -> None:
        self.mode: Literal["ok", "error", "hang", "bug"] = "ok"
        self.queries: list[str] = []
        self.searching = threading.Event()
        self.closed = False

    async def search(self, query: str, *, max_results: int) -> list[SearchResult]:
        self.queries.append(query)
        self.searching.set()
        if self.mode == "error":
            raise SearchError("fake: the service answered 503")
        if self.mode == "hang":
            await asyncio.Event().wait()
        if self.mode == "bug":
            raise KeyError("a provider bug")
        return [
            SearchResult(f"About {query}", f"https://example.org/{n}", f"Page {n} says {query} is well known.")
            for n in (1, 2)
        ][:max_results]

    async def aclose(self) -> None:
        self.closed = True


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def make_client(fake: FakeEngine, provider: FakeProvider) -> Iterator[Callable[..., TestClient]]:
    opened: list[TestClient] = []

    def make(**settings: Any) -> TestClient:
        app = create_app(
            Settings(api_keys=(KEY,), **settings),
            engine_factory=lambda _: fake,
            store=MemoryStore(),
            jobs_config=JobsConfig(max_jobs=2, tick_seconds=0.05, lease_seconds=1.0),
            search_provider=provider,
        )
        client = TestClient(app, headers={"Authorization": f"Bearer {KEY}"})
        opened.append(client.__enter__())
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def web(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(web_search="fake", web_search_timeout=5.0)


def prompt(fake: FakeEngine, n: int) -> str:
    return "".join(chr(t) for t in fake.requests[n][1])


def post(client: TestClient, path: str = "/v1/responses", **body: Any) -> dict[str, Any]:
    r = client.post(path, json={"model": M, "input": "What is the capital of France?", "tools": [WEB], **body})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_search_then_answer_with_summed_usage(web: TestClient, fake: FakeEngine, provider: FakeProvider) -> None:
    fake.enqueue(search_call("capital of France"), cached_tokens=3)
    fake.enqueue("Paris", " [1].", cached_tokens=5)
    body = post(web, include=[RESULTS])
    assert provider.queries == ["capital of France"]
    search, text = body["output"]
    assert search["type"] == "web_search_call" and search["id"].startswith("ws_") and search["status"] == "completed"
    assert search["action"]["query"] == "capital of France"
    assert [s["url"] for s in search["action"]["sources"]] == ["https://example.org/1", "https://example.org/2"]
    assert search["action"]["sources"][0]["title"] == "About capital of France"
    assert text == {"type": "text", "text": "Paris [1]."}
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Paris [1]."}
    assert body["choices"][0]["finish_reason"] == "stop" and body["status"] == "completed"
    # The second generation reads the first prompt unchanged (prefix cache), then the call and the quoted results.
    first, second = prompt(fake, 0), prompt(fake, 1)
    assert second.startswith(first) and search["results"] in second and "web_search" in first
    assert "<tool_response>" in second[len(first) :]
    usage = body["usage"]
    assert usage["input_tokens"] == len(first) + len(second)
    assert usage["input_tokens_details"]["cached_tokens"] == 3 + 5
    assert usage["output_tokens"] == 1 + 2
    assert usage["output_tokens_details"]["tool_output_tokens"] == len(search["results"])  # one token a character
    stored = web.get(f"/v1/responses/{body['id']}").json()
    assert stored["output"] == body["output"]


def test_gradient_stream_shows_the_answer_and_no_search_call(web: TestClient, fake: FakeEngine) -> None:
    fake.enqueue(search_call("weather"))
    fake.enqueue("Sunny", " today")
    r = web.post(
        "/v1/responses",
        json={"model": M, "input": "weather?", "tools": [WEB], "stream": True}
        | {"stream_options": {"include_usage": True}},
    )
    chunks = sse_chunks(r.text)
    assert chunks[-1] == "[DONE]"
    deltas = [c["choices"][0]["delta"] for c in chunks if isinstance(c, dict) and c["choices"]]
    assert not any(d.get("tool_calls") for d in deltas)  # the search is the server's, not the client's
    assert "".join(d.get("content") or "" for d in deltas) == "Sunny today"
    assert [c["choices"][0]["finish_reason"] for c in chunks if isinstance(c, dict) and c["choices"]][-1] == "stop"
    usage = next(c for c in chunks if isinstance(c, dict) and not c["choices"])["usage"]
    assert usage["prompt_tokens"] == len(prompt(fake, 0)) + len(prompt(fake, 1))


def test_openai_stream_events_and_citations(web: TestClient, fake: FakeEngine) -> None:
    sdk = OpenAI(api_key=KEY, base_url="http://testserver/openai/v1", http_client=web, max_retries=0)
    fake.enqueue(search_call("capital of France"))
    fake.enqueue("Paris [1], see https://example.org/2 and [7].")
    with sdk.responses.stream(
        model=M, input="capital?", tools=[{"type": "web_search"}], include=["web_search_call.action.sources"]
    ) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.annotation.added",
        "response.output_text.annotation.added",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    call, message = final.output
    assert call.type == "web_search_call" and call.status == "completed"
    assert call.action.type == "search" and call.action.query == "capital of France"
    assert [s.url for s in call.action.sources or []] == ["https://example.org/1", "https://example.org/2"]
    assert message.type == "message"
    text = message.content[0]
    assert text.type == "output_text"
    spans = [(a.url, text.text[a.start_index : a.end_index]) for a in text.annotations if a.type == "url_citation"]
    assert spans == [("https://example.org/1", "[1]"), ("https://example.org/2", "https://example.org/2")]
    stored = sdk.responses.retrieve(final.id).output[1]
    assert stored.type == "message" and stored.content[0].type == "output_text"
    assert stored.content[0].annotations == text.annotations  # stored with its citations


def test_openai_sources_only_when_included(web: TestClient, fake: FakeEngine) -> None:
    fake.enqueue(search_call("x"))
    fake.enqueue("ok")
    body = post(web, "/openai/v1/responses")
    assert body["output"][0]["action"] == {"type": "search", "query": "x"}
    assert body["tools"] == [WEB]


@pytest.mark.parametrize("mode", ["error", "bug"])
def test_failed_search_is_told_to_the_model(
    web: TestClient, fake: FakeEngine, provider: FakeProvider, mode: Literal["error", "bug"]
) -> None:
    provider.mode = mode
    fake.enqueue(search_call("news"))
    fake.enqueue("I could not search.")
    r = web.post(
        "/openai/v1/responses",
        json={"model": M, "input": "news?", "tools": [WEB], "stream": True, "include": [RESULTS]},
    )
    events = sse(r.text)
    kinds = [k for k, _ in events]
    assert "response.web_search_call.completed" not in kinds and kinds[-1] == "response.completed"
    done = next(d["item"] for k, d in events if k == "response.output_item.done")
    assert done["type"] == "web_search_call" and done["status"] == "failed"
    assert "The search failed" in done["results"] and done["results"] in prompt(fake, 1)
    assert "KeyError" not in done["results"]  # a provider's bug stays in the log
    assert events[-1][1]["response"]["output"][1]["content"][0]["text"] == "I could not search."


def test_hanging_search_fails_within_the_timeout(
    make_client: Callable[..., TestClient], fake: FakeEngine, provider: FakeProvider
) -> None:
    client = make_client(web_search="fake", web_search_timeout=0.3)
    provider.mode = "hang"
    fake.enqueue(search_call("slow"))
    fake.enqueue("answer")
    began = time.monotonic()
    body = post(client, include=[RESULTS])
    assert time.monotonic() - began < 5
    assert body["output"][0]["status"] == "failed" and "timed out" in body["output"][0]["results"]
    assert body["status"] == "completed" and body["choices"][0]["message"]["content"] == "answer"


def test_max_tool_calls_ignores_further_searches(web: TestClient, fake: FakeEngine, provider: FakeProvider) -> None:
    fake.enqueue(search_call("one"))
    fake.enqueue(search_call("two"))
    fake.enqueue("never generated")
    body = post(web, max_tool_calls=1, include=[RESULTS])
    assert provider.queries == ["one"] and len(fake.requests) == 2
    assert body["output"][0]["results"].endswith(LAST_SEARCH)  # the model was told it was the last one
    assert [o["type"] for o in body["output"]] == ["web_search_call"]
    assert body["status"] == "completed" and body["usage"]["output_tokens"] == 2


def test_server_limit_and_parallel_searches(
    make_client: Callable[..., TestClient], fake: FakeEngine, provider: FakeProvider
) -> None:
    client = make_client(web_search="fake", web_search_max_calls=3)
    fake.enqueue(search_call("a") + "\n" + search_call("b"))
    fake.enqueue(search_call("c") + "\n" + search_call("d"))
    fake.enqueue("done")
    body = post(client)
    # The fourth search is ignored; the model still answers after the third, told it was the last.
    assert provider.queries == ["a", "b", "c"] and len(fake.requests) == 3
    assert [o.get("action", {}).get("query") for o in body["output"]] == ["a", "b", "c", None]
    assert body["choices"][0]["message"]["content"] == "done"


def test_forced_search_is_constrained_then_free(web: TestClient, fake: FakeEngine) -> None:
    fake.enqueue(search_call("forced"))
    fake.enqueue("answer")
    body = post(web, tool_choice={"type": "web_search"})
    assert body["tool_choice"] == "web_search" and body["output"][0]["action"]["query"] == "forced"
    first, second = fake.requests[0][2].constraint, fake.requests[1][2].constraint
    assert first is not None and first.structural_tag is not None
    tag = json.loads(first.structural_tag)
    assert "web_search" in first.structural_tag and tag["format"]["stop_after_first"] is True
    assert second is None
    fake.enqueue(search_call("forced"))
    openai = post(web, "/openai/v1/responses", tool_choice={"type": "web_search_preview"})
    assert openai["tool_choice"] == {"type": "web_search_preview"} and openai["output"][0]["action"]["query"]


def test_function_and_search_mixed(web: TestClient, fake: FakeEngine, provider: FakeProvider) -> None:
    fake.enqueue(search_call("rates"))
    fake.enqueue(ADD_CALL)
    body = post(web, tools=[ADD, WEB])
    assert [o["type"] for o in body["output"]] == ["web_search_call", "function_call"]
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert [c["function"]["name"] for c in body["choices"][0]["message"]["tool_calls"]] == ["add"]
    # One generation with both: the search runs, and the client's call ends the turn.
    fake.enqueue(search_call("both") + "\n" + ADD_CALL)
    body = post(web, tools=[ADD, WEB])
    assert provider.queries[-1] == "both" and len(fake.requests) == 3
    assert [o["type"] for o in body["output"]] == ["function_call", "web_search_call"]
    assert body["choices"][0]["finish_reason"] == "tool_calls"


def test_output_budget_spans_the_generations(web: TestClient, fake: FakeEngine) -> None:
    call = search_call("q")
    fake.enqueue(call)
    fake.enqueue(*"abcdefghij")
    body = post(web, max_output_tokens=5)
    assert fake.requests[1][2].max_tokens == 4
    assert body["status"] == "incomplete" and body["usage"]["output_tokens"] == 5


def test_chain_keeps_the_search_items(web: TestClient, fake: FakeEngine) -> None:
    fake.enqueue(search_call("capital of France"))
    fake.enqueue("Paris.")
    one = post(web, include=[RESULTS])
    fake.enqueue("Still Paris.")
    two = post(web, input="And again?", previous_response_id=one["id"])
    third = prompt(fake, 2)
    assert prompt(fake, 1) in third and one["output"][0]["results"] in third
    assert two["usage"]["output_tokens_details"]["tool_output_tokens"] == 0  # nothing searched this turn
    openai = web.get(f"/openai/v1/responses/{one['id']}").json()
    assert openai["output"][0]["type"] == "web_search_call" and openai["output"][0]["action"]["query"]


def test_stream_replay_has_the_search_events(web: TestClient, fake: FakeEngine) -> None:
    fake.enqueue(search_call("q"))
    fake.enqueue("a")
    body = post(web, "/openai/v1/responses")
    replayed = [k for k, _ in sse(web.get(f"/openai/v1/responses/{body['id']}?stream=true").text)]
    assert replayed[2:7] == [
        "response.output_item.added",
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
        "response.output_item.done",
    ]


def test_cancel_during_a_search_stores_it_incomplete(web: TestClient, fake: FakeEngine, provider: FakeProvider) -> None:
    provider.mode = "hang"
    fake.enqueue(search_call("slow"))
    started = post(web, background=True)
    assert provider.searching.wait(10)
    assert web.post(f"/v1/responses/{started['id']}/cancel").json()["status"] == "cancelled"
    stored = web.get(f"/v1/responses/{started['id']}").json()
    assert stored["status"] == "cancelled" and stored["output"][0]["status"] == "incomplete"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tools": [WEB, {**ADD, "name": "web_search"}]}, "tools"),
        (
            {"tools": [ADD], "tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": [WEB]}},
            "tool_choice.tools",
        ),
    ],
)
def test_bad_search_requests_are_400(web: TestClient, body: dict[str, Any], param: str) -> None:
    r = web.post("/v1/responses", json={"model": M, "input": "hi", **body})
    assert r.status_code == 400 and r.json()["error"]["param"] == param


def test_provider_closes_with_the_app(fake: FakeEngine, provider: FakeProvider) -> None:
    app = create_app(Settings(), engine_factory=lambda _: fake, store=MemoryStore(), search_provider=provider)
    with TestClient(app):
        assert not provider.closed
    assert provider.closed


def test_tool_choice_decides_whether_the_search_is_offered(web: TestClient, fake: FakeEngine) -> None:
    only_search = {"type": "allowed_tools", "mode": "auto", "tools": [WEB]}
    post(web, tools=[ADD, WEB], tool_choice=only_search)
    shown = prompt(fake, 0)
    assert '"name": "web_search"' in shown and '"name": "add"' not in shown
    body = post(web, tools=[ADD, WEB], tool_choice="none")
    assert "web_search" not in prompt(fake, 1) and body["status"] == "completed"
