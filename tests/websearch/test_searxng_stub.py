"""The SearXNG stub the end-to-end tests use, checked over real HTTP, also against the real provider."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.websearch.searxng_stub import SearxngStub, canned_results
from vresponses.websearch import SearchError, make_provider, run_search


@pytest.fixture
def stub() -> Iterator[SearxngStub]:
    with SearxngStub({"custom": [{"url": "https://c.example/", "title": "Custom", "content": "Canned."}]}) as server:
        yield server


def test_answers_like_searxng(stub: SearxngStub) -> None:
    response = httpx.get(f"{stub.url}/search", params={"q": "red pandas", "format": "json"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["query"] == "red pandas" and body["results"] == canned_results("red pandas")
    assert [hit["url"] for hit in body["results"]] == [f"https://example.org/red-pandas/{n}" for n in (1, 2, 3)]
    assert (
        httpx.get(f"{stub.url}/search", params={"q": "custom", "format": "json"}).json()["results"][0]["title"]
        == "Custom"
    )
    assert stub.queries == ["red pandas", "custom"]


def test_refuses_what_searxng_refuses(stub: SearxngStub) -> None:
    assert httpx.get(f"{stub.url}/search", params={"q": "x"}).status_code == 403
    assert httpx.get(f"{stub.url}/search", params={"q": "x", "format": "html"}).status_code == 403
    assert httpx.get(f"{stub.url}/admin", params={"format": "json"}).status_code == 404
    assert stub.queries == []


async def test_the_provider_reads_it_end_to_end(stub: SearxngStub) -> None:
    provider = make_provider(f"searxng={stub.url}", env={})
    results = await run_search(provider, "red pandas", max_results=2)
    await provider.aclose()
    assert [(r.title, r.url) for r in results] == [
        ("Result 1 about red pandas", "https://example.org/red-pandas/1"),
        ("Result 2 about red pandas", "https://example.org/red-pandas/2"),
    ]
    assert stub.queries == ["red pandas"]


@pytest.mark.parametrize(
    ("mode", "message"),
    [("error", "answered HTTP 500"), ("malformed", "malformed response"), ("hang", "did not answer in time")],
)
async def test_failing_and_hanging_modes_end_as_search_errors_within_the_timeout(
    stub: SearxngStub, mode: str, message: str
) -> None:
    stub.mode = mode  # type: ignore[assignment]
    provider = make_provider(f"searxng={stub.url}", env={}, timeout=0.5)
    start = time.monotonic()
    with pytest.raises(SearchError, match=message):
        await run_search(provider, "anything", time_limit=1.0)
    assert time.monotonic() - start < 1.5
    await provider.aclose()
    assert stub.queries == ["anything"]


async def test_an_unreachable_host_is_a_search_error() -> None:
    with SearxngStub() as stopped:
        url = stopped.url
    provider = make_provider(f"searxng={url}", env={}, timeout=2)
    with pytest.raises(SearchError, match="searxng: the search service is unreachable"):
        await run_search(provider, "q")
    await provider.aclose()


def test_stop_returns_while_a_request_hangs() -> None:
    server = SearxngStub(mode="hang").start()
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{server.url}/search", params={"q": "x", "format": "json"}, timeout=0.3)
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 2
