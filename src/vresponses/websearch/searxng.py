"""A self-hosted SearXNG instance, through its JSON API (`GET /search?q=...&format=json`)."""

from __future__ import annotations

import httpx
import msgspec

from vresponses.websearch.base import SearchConfigError, SearchResult
from vresponses.websearch.http import fetch_json, make_client
from vresponses.websearch.text import web_result


class _Hit(msgspec.Struct):
    url: str | None = None
    title: str | None = None
    content: str | None = None
    published: str | None = msgspec.field(default=None, name="publishedDate")


class _Page(msgspec.Struct):
    results: list[_Hit] = msgspec.field(default_factory=list)


def check_base_url(value: str, *, provider: str) -> str:
    """A configured service URL, validated: http(s), a host, no query or fragment."""
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL:
        raise SearchConfigError(f"--web-search {provider}=URL: the value is not a URL") from None
    if url.scheme not in ("http", "https") or not url.host or url.query or url.fragment:
        raise SearchConfigError(
            f"--web-search {provider}=URL needs an http(s) URL with a host and no query, like http://127.0.0.1:8888"
        )
    return value


class SearxngProvider:
    """Searches one SearXNG instance; the instance must have `json` among its `search.formats`."""

    name = "searxng"

    def __init__(self, base_url: str, *, timeout: float, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._client = make_client(check_base_url(base_url, provider="searxng"), timeout=timeout, transport=transport)

    async def search(self, query: str, *, max_results: int) -> list[SearchResult]:
        """The first page of the instance's results, cut to max_results (SearXNG has no count parameter)."""
        page = await fetch_json(
            self._client, self.name, "GET", "/search", _Page, params={"q": query, "format": "json", "pageno": 1}
        )
        results = [web_result(hit.title, hit.url, hit.content, hit.published) for hit in page.results]
        return [result for result in results if result is not None][:max_results]

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
