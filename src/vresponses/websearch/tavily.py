"""The Tavily search API (`POST https://api.tavily.com/search`), key as a bearer token."""

from __future__ import annotations

import httpx
import msgspec

from vresponses.websearch.base import SearchResult
from vresponses.websearch.http import fetch_json, make_client
from vresponses.websearch.text import web_result

TAVILY_URL = "https://api.tavily.com/"


class _Hit(msgspec.Struct):
    url: str | None = None
    title: str | None = None
    content: str | None = None
    published_date: str | None = None


class _Page(msgspec.Struct):
    results: list[_Hit] = msgspec.field(default_factory=list)


class TavilyProvider:
    """Tavily's basic-depth search: each hit's `content` is the extract most relevant to the query."""

    name = "tavily"

    def __init__(
        self,
        api_key: str,
        *,
        timeout: float,
        base_url: str = TAVILY_URL,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"}
        self._client = make_client(base_url, timeout=timeout, headers=headers, transport=transport)

    async def search(self, query: str, *, max_results: int) -> list[SearchResult]:
        """Up to max_results hits (Tavily allows 0-20); answers, images and raw pages are not requested."""
        body = {
            "query": query,
            "max_results": min(max_results, 20),
            "search_depth": "basic",
            "topic": "general",
            "include_answer": False,
            "include_raw_content": False,
            "include_images": False,
        }
        page = await fetch_json(self._client, self.name, "POST", "search", _Page, json=body)
        results = [web_result(hit.title, hit.url, hit.content, hit.published_date) for hit in page.results]
        return [result for result in results if result is not None][:max_results]

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
