"""The ddgs provider with ddgs faked at its boundary: the text-search call and the library's module."""

from __future__ import annotations

import sys
import threading
import time
import types
from collections.abc import Iterator, Mapping

import pytest

from vresponses.websearch.base import SearchConfigError, SearchError, run_search
from vresponses.websearch.metasearch import DdgsProvider, ddgs_text

HITS = [
    {
        "title": "Python (programming language)",
        "href": "https://en.wikipedia.org/wiki/Python",
        "body": "Python is a <b>high-level</b> language.",
    },
    {"title": "No link", "href": "", "body": "dropped"},
    {"title": "Welcome to Python.org", "href": "https://www.python.org/", "body": "The official home."},
]


async def test_maps_hits_and_passes_the_query() -> None:
    calls: list[tuple[str, int]] = []

    def text(query: str, max_results: int) -> list[Mapping[str, object]]:
        calls.append((query, max_results))
        return HITS

    provider = DdgsProvider(timeout=5, text=text)
    results = await provider.search("python language", max_results=7)
    await provider.aclose()
    assert calls == [("python language", 7)]
    assert [(r.title, r.url, r.snippet) for r in results] == [
        ("Python (programming language)", "https://en.wikipedia.org/wiki/Python", "Python is a high-level language."),
        ("Welcome to Python.org", "https://www.python.org/", "The official home."),
    ]


async def test_a_failing_library_is_a_search_error() -> None:
    def text(query: str, max_results: int) -> list[Mapping[str, object]]:
        raise ConnectionError("https://html.duckduckgo.com/html 202 Ratelimit")

    provider = DdgsProvider(timeout=5, text=text)
    with pytest.raises(SearchError) as caught:
        await provider.search("q", max_results=5)
    assert str(caught.value) == "ddgs: the search failed (ConnectionError)"


async def test_a_hanging_library_ends_within_the_timeout() -> None:
    release = threading.Event()

    def text(query: str, max_results: int) -> list[Mapping[str, object]]:
        release.wait()
        return HITS

    provider = DdgsProvider(timeout=0.3, text=text, workers=1)
    try:
        start = time.monotonic()
        with pytest.raises(SearchError, match="did not finish in time"):
            await provider.search("q", max_results=5)
        # The one worker is still stuck, so a second search waits for it and also ends at its own timeout.
        with pytest.raises(SearchError, match="did not finish in time"):
            await run_search(provider, "q", max_results=5, time_limit=5)
        assert time.monotonic() - start < 2
    finally:
        release.set()
        await provider.aclose()


@pytest.fixture
def fake_ddgs(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, object]]:
    """A stand-in for the ddgs package: `DDGS(timeout=...).text(...)` answers from `state`."""
    state: dict[str, object] = {"answer": HITS, "calls": []}
    module = types.ModuleType("ddgs")
    exceptions = types.ModuleType("ddgs.exceptions")

    class DDGSException(Exception):
        pass

    class DDGS:
        def __init__(self, timeout: int | None = 5) -> None:
            self.timeout = timeout

        def text(self, query: str, **kwargs: object) -> list[dict[str, str]]:
            state["calls"].append((self.timeout, query, kwargs))  # type: ignore[attr-defined]
            answer = state["answer"]
            if isinstance(answer, Exception):
                raise answer
            return answer  # type: ignore[return-value]

    module.DDGS = DDGS  # type: ignore[attr-defined]
    exceptions.DDGSException = DDGSException  # type: ignore[attr-defined]
    state["exception"] = DDGSException
    monkeypatch.setitem(sys.modules, "ddgs", module)
    monkeypatch.setitem(sys.modules, "ddgs.exceptions", exceptions)
    yield state


def test_the_library_is_called_with_backend_count_and_timeout(fake_ddgs: dict[str, object]) -> None:
    text = ddgs_text(timeout=7.6, backend="duckduckgo,brave")
    assert text("rust borrow checker", 4) == HITS
    assert fake_ddgs["calls"] == [(8, "rust borrow checker", {"max_results": 4, "backend": "duckduckgo,brave"})]


def test_no_results_is_empty_but_other_library_errors_raise(fake_ddgs: dict[str, object]) -> None:
    exception = fake_ddgs["exception"]
    assert isinstance(exception, type)
    text = ddgs_text(timeout=5, backend="auto")
    fake_ddgs["answer"] = exception("No results found.")
    assert text("zzzz", 5) == []
    fake_ddgs["answer"] = exception("https://www.bing.com/search 403 Forbidden")
    with pytest.raises(exception):
        text("zzzz", 5)


def test_a_missing_library_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ddgs", None)
    with pytest.raises(SearchConfigError, match=r"pip install 'vresponses\[websearch\]'"):
        DdgsProvider(timeout=5)
