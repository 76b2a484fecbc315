"""SearXNG, Brave and Tavily: the request each sends and how its recorded response maps to results."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.websearch.conftest import Recorder, fixture_json
from vresponses.websearch.base import SearchError, SearchResult
from vresponses.websearch.brave import BraveProvider
from vresponses.websearch.searxng import SearxngProvider
from vresponses.websearch.tavily import TavilyProvider

BRAVE_KEY = "BSA-secret-key-123"
TAVILY_KEY = "tvly-secret-key-456"


def ok(body: object) -> httpx.Response:
    return httpx.Response(200, json=body)


async def test_searxng_request_and_mapping() -> None:
    rec = Recorder(lambda request: ok(fixture_json("searxng.json")))
    provider = SearxngProvider("http://127.0.0.1:8888", timeout=5, transport=rec.transport)
    results = await provider.search("sqlite fts5 bm25", max_results=10)
    await provider.aclose()

    (request,) = rec.requests
    assert request.method == "GET"
    assert request.url.host == "127.0.0.1" and request.url.port == 8888 and request.url.path == "/search"
    assert dict(request.url.params) == {"q": "sqlite fts5 bm25", "format": "json", "pageno": "1"}
    # The magnet: hit has no web address to cite and is dropped.
    assert [r.url for r in results] == [
        "https://www.sqlite.org/fts5.html",
        "https://stackoverflow.com/questions/66040312/how-to-rank-results-with-bm25-in-sqlite-fts5",
        "https://en.wikipedia.org/wiki/Okapi_BM25",
    ]
    assert results[0].title == "SQLite FTS5 Extension"
    assert results[0].snippet.startswith("FTS5 is an SQLite virtual table module")
    assert results[0].published is None
    assert results[1].published == "2021-02-04T00:00:00"


async def test_searxng_keeps_a_path_prefix_and_cuts_to_max_results() -> None:
    rec = Recorder(lambda request: ok(fixture_json("searxng.json")))
    provider = SearxngProvider("https://search.example.net/searx/", timeout=5, transport=rec.transport)
    results = await provider.search("bm25", max_results=2)
    assert rec.requests[0].url.path == "/searx/search"
    assert len(results) == 2


async def test_a_hostile_query_stays_a_query_parameter() -> None:
    rec = Recorder(lambda request: ok({"results": []}))
    provider = SearxngProvider("http://127.0.0.1:8888", timeout=5, transport=rec.transport)
    query = "x&format=html&q=evil /../admin?a=b#frag http://169.254.169.254/"
    assert await provider.search(query, max_results=5) == []
    url = rec.requests[0].url
    assert (url.host, url.port, url.path) == ("127.0.0.1", 8888, "/search")
    assert url.params.get_list("q") == [query] and url.params.get_list("format") == ["json"]


async def test_brave_request_and_mapping() -> None:
    rec = Recorder(lambda request: ok(fixture_json("brave.json")))
    provider = BraveProvider(BRAVE_KEY, timeout=5, transport=rec.transport)
    results = await provider.search("python asyncio timeout", max_results=50)

    (request,) = rec.requests
    assert request.method == "GET"
    assert str(request.url.copy_with(params=None)) == "https://api.search.brave.com/res/v1/web/search"
    assert request.url.params["q"] == "python asyncio timeout"
    assert request.url.params["count"] == "20"  # Brave's maximum
    assert request.headers["X-Subscription-Token"] == BRAVE_KEY
    assert request.headers["Accept"] == "application/json"
    assert results == [
        SearchResult(
            title="Coroutines and Tasks — Python 3.13 documentation",
            url="https://docs.python.org/3/library/asyncio-task.html",
            snippet="asyncio.timeout(delay) returns an asynchronous context manager that can be used to limit the "
            "amount of time spent waiting on something. If the long running operation takes more than the delay, "
            "the current task is cancelled and the TimeoutError is raised.",
            published="2024-10-07T04:12:33",
        ),
        SearchResult(
            title="Python & asyncio: how to time out a coroutine",
            url="https://superfastpython.com/asyncio-timeout/",
            snippet="You can use asyncio.wait_for() to wait for a coroutine with a timeout.",
            published="2 days ago",
        ),
    ]


async def test_brave_without_web_results_is_empty() -> None:
    rec = Recorder(lambda request: ok({"type": "search", "query": {"original": "zzzz"}}))
    provider = BraveProvider(BRAVE_KEY, timeout=5, transport=rec.transport)
    assert await provider.search("zzzz", max_results=5) == []


async def test_tavily_request_and_mapping() -> None:
    rec = Recorder(lambda request: ok(fixture_json("tavily.json")))
    provider = TavilyProvider(TAVILY_KEY, timeout=5, transport=rec.transport)
    results = await provider.search("Who is Leo Messi?", max_results=3)

    (request,) = rec.requests
    assert request.method == "POST" and str(request.url) == "https://api.tavily.com/search"
    assert request.headers["Authorization"] == f"Bearer {TAVILY_KEY}"
    body = json.loads(request.content)
    assert body["query"] == "Who is Leo Messi?" and body["max_results"] == 3
    assert body["include_raw_content"] is False and body["include_answer"] is False
    assert [r.url for r in results] == [
        "https://en.wikipedia.org/wiki/Lionel_Messi",
        "https://www.britannica.com/biography/Lionel-Messi",
    ]
    assert results[0].snippet.startswith('Lionel Andrés "Leo" Messi is an Argentine')
    assert results[0].published is None
    assert results[1].published == "Sun, 15 Dec 2024 10:00:00 GMT"


def _providers(transport: httpx.MockTransport) -> list[SearxngProvider | BraveProvider | TavilyProvider]:
    return [
        SearxngProvider("http://admin:hunter2@10.0.0.5:8888", timeout=5, transport=transport),
        BraveProvider(BRAVE_KEY, timeout=5, transport=transport),
        TavilyProvider(TAVILY_KEY, timeout=5, transport=transport),
    ]


def _raise(exc: Exception) -> httpx.Response:
    raise exc


FAILURES = {
    "http-500": (lambda request: httpx.Response(500, text="oops"), "answered HTTP 500"),
    "bad-key": (lambda request: httpx.Response(401, json={"error": "bad token"}), "refused the request (HTTP 401)"),
    "rate-limit": (lambda request: httpx.Response(429), "rate-limiting"),
    "not-json": (lambda request: httpx.Response(200, text="<html>maintenance</html>"), "malformed response"),
    "wrong-shape": (lambda request: ok({"results": "none", "web": []}), "malformed response"),
    "truncated": (lambda request: httpx.Response(200, content=b'{"results": [{"url": "https://a'), "malformed"),
    "too-large": (lambda request: httpx.Response(200, content=b" " * (3 * 1024 * 1024)), "sent more than"),
    "refused": (lambda request: _raise(httpx.ConnectError("[Errno 111] Connection refused")), "unreachable"),
    "timeout": (lambda request: _raise(httpx.ReadTimeout("timed out")), "did not answer in time"),
}


@pytest.mark.parametrize("failure", list(FAILURES))
async def test_failures_are_search_errors_that_leak_nothing(failure: str) -> None:
    answer, expected = FAILURES[failure]
    rec = Recorder(answer)
    for provider in _providers(rec.transport):
        with pytest.raises(SearchError) as caught:
            await provider.search("anything", max_results=5)
        message = str(caught.value)
        assert message.startswith(f"{provider.name}: ") and expected in message
        for secret in (BRAVE_KEY, TAVILY_KEY, "hunter2", "10.0.0.5", "api.search.brave.com", "api.tavily.com"):
            assert secret not in message
        await provider.aclose()
    assert len(rec.requests) == 3


async def test_redirects_are_not_followed() -> None:
    rec = Recorder(lambda request: httpx.Response(302, headers={"Location": "http://169.254.169.254/latest"}))
    provider = SearxngProvider("http://127.0.0.1:8888", timeout=5, transport=rec.transport)
    with pytest.raises(SearchError, match="HTTP 302"):
        await provider.search("q", max_results=5)
    assert len(rec.requests) == 1


async def test_each_hit_is_bounded_and_titled() -> None:
    huge = {"url": "https://a.example/", "title": None, "content": "<p>" + "lorem ipsum " * 20_000 + "</p>"}
    rec = Recorder(lambda request: ok({"results": [huge, {"url": "javascript:alert(1)", "title": "x"}]}))
    provider = SearxngProvider("http://127.0.0.1:8888", timeout=5, transport=rec.transport)
    (result,) = await provider.search("lorem", max_results=5)
    assert result.title == "https://a.example/"
    assert 3000 < len(result.snippet) <= 4000 and result.snippet.startswith("lorem ipsum lorem")
