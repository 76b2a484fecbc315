"""`--web-search PROVIDER[=CONFIG]` values, and the guarded call every search goes through."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from pathlib import Path

import pytest

from vresponses.websearch import SearchConfigError, SearchError, SearchResult, make_provider, run_search
from vresponses.websearch.base import MAX_QUERY_CHARS, clean_query
from vresponses.websearch.brave import BraveProvider
from vresponses.websearch.local import LocalIndex
from vresponses.websearch.metasearch import DdgsProvider
from vresponses.websearch.searxng import SearxngProvider
from vresponses.websearch.tavily import TavilyProvider

KEYS = {"BRAVE_API_KEY": "brave-secret", "TAVILY_API_KEY": "tavily-secret"}


async def test_each_provider_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ddgs", None)
    (tmp_path / "a.md").write_text("# A\n")
    made = [
        make_provider("searxng=http://127.0.0.1:8888", env={}),
        make_provider(" SearXNG = https://search.example.net/searx ", env={}),
        make_provider("brave", env=KEYS),
        make_provider("tavily", env=KEYS),
        make_provider(f"local={tmp_path}", env={}),
    ]
    assert [type(p) for p in made] == [SearxngProvider, SearxngProvider, BraveProvider, TavilyProvider, LocalIndex]
    for provider in made:
        await provider.aclose()


@pytest.mark.parametrize(
    ("spec", "env", "message"),
    [
        ("google", {}, "'google' names no provider; use one of searxng=URL, ddgs[=BACKENDS], brave, tavily"),
        ("", {}, "names no provider"),
        ("searxng", {}, "--web-search searxng needs a value: searxng=URL"),
        ("searxng=", {}, "searxng needs a value"),
        ("searxng=127.0.0.1:8888", {}, "needs an http(s) URL with a host"),
        ("searxng=ftp://host/", {}, "needs an http(s) URL"),
        ("searxng=http:///search", {}, "needs an http(s) URL"),
        ("searxng=http://host/search?format=html", {}, "no query"),
        ("local", {}, "--web-search local needs a value: local=PATH"),
        ("local=/does/not/exist", {}, "is not a folder"),
        ("brave", {}, "brave needs its API key in the environment variable BRAVE_API_KEY"),
        ("brave", {"BRAVE_API_KEY": "  "}, "BRAVE_API_KEY"),
        ("tavily", {"BRAVE_API_KEY": "x"}, "TAVILY_API_KEY"),
        ("brave=my-key", KEYS, "brave takes no value; its API key comes from BRAVE_API_KEY"),
        ("ddgs=duckduckgo;rm -rf", {}, "comma-separated names"),
    ],
)
def test_bad_values_say_how_to_fix_them(spec: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(SearchConfigError) as caught:
        make_provider(spec, env=env)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_a_searxng_url_with_credentials_is_not_echoed() -> None:
    with pytest.raises(SearchConfigError) as caught:
        make_provider("searxng=http://admin:hunter2@[::1", env={})
    assert "hunter2" not in str(caught.value)


def test_ddgs_without_the_package_and_a_bad_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ddgs", None)
    with pytest.raises(SearchConfigError, match="needs the ddgs package"):
        make_provider("ddgs", env={})
    with pytest.raises(SearchConfigError, match="timeout"):
        make_provider("searxng=http://127.0.0.1:1", env={}, timeout=0)


def test_ddgs_backends_reach_the_library(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}
    monkeypatch.setattr(
        "vresponses.websearch.metasearch.ddgs_text", lambda *, timeout, backend: seen.update(backend=backend)
    )
    assert isinstance(make_provider("ddgs= duckduckgo, brave", env={}), DdgsProvider)
    assert seen == {"backend": "duckduckgo,brave"}


class Scripted:
    """A provider whose search sleeps, fails or answers as a test says."""

    name = "scripted"

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.queries: list[tuple[str, int]] = []

    async def search(self, query: str, *, max_results: int) -> list[SearchResult]:
        self.queries.append((query, max_results))
        if self.behaviour == "hang":
            await asyncio.Event().wait()
        if self.behaviour == "bug":
            raise KeyError("internal detail")
        if self.behaviour == "error":
            raise SearchError("scripted: the search service answered HTTP 502")
        return [SearchResult(title=f"t{n}", url=f"https://e.org/{n}", snippet="s") for n in range(30)]

    async def aclose(self) -> None:
        pass


async def test_run_search_cleans_the_query_and_bounds_the_count() -> None:
    provider = Scripted("ok")
    results = await run_search(provider, "  what\n is   x \t", max_results=100)
    assert provider.queries == [("what is x", 20)] and len(results) == 20
    assert len(await run_search(provider, "q", max_results=0)) == 1


async def test_an_empty_query_is_a_search_error() -> None:
    provider = Scripted("ok")
    with pytest.raises(SearchError, match="the search query is empty"):
        await run_search(provider, " \n ")
    assert provider.queries == []


def test_long_queries_are_cut_at_a_word() -> None:
    query = clean_query("word " * 200)
    assert len(query) <= MAX_QUERY_CHARS and query.endswith("word")
    assert clean_query("x" * 1000) == "x" * MAX_QUERY_CHARS


async def test_a_hanging_provider_ends_within_the_time_limit() -> None:
    start = time.monotonic()
    with pytest.raises(SearchError, match=r"^scripted: the search timed out after 0.2 s$"):
        await run_search(Scripted("hang"), "q", time_limit=0.2)
    assert time.monotonic() - start < 1.0


async def test_a_provider_bug_is_a_search_error_with_no_details(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR), pytest.raises(SearchError) as caught:
        await run_search(Scripted("bug"), "q")
    assert str(caught.value) == "scripted: the search failed"
    assert "internal detail" in caplog.text
    with pytest.raises(SearchError, match="HTTP 502"):
        await run_search(Scripted("error"), "q")
