"""The Brave Search API (`GET https://api.search.brave.com/res/v1/web/search`), key in `X-Subscription-Token`."""

from __future__ import annotations

import httpx
import msgspec

from vresponses.websearch.base import SearchResult
from vresponses.websearch.http import fetch_json, make_client
from vresponses.websearch.text import web_result

BRAVE_URL = "https://api.search.brave.com/res/v1/"


class _Hit(msgspec.Struct):
    url: str | None = None
    title: str | None = None
    description: str | None = None
    extra_snippets: list[str] | None = None
    page_age: str | None = None
    age: str | None = None


class _Web(msgspec.Struct):
    results: list[_Hit] = msgspec.field(default_factory=list)


class _Page(msgspec.Struct):
    # Absent when Brave found no web results (it may still send news, videos or a discussion block).
    web: _Web | None = None


class BraveProvider:
    """Web results from Brave's own index; the snippet is the description plus any extra snippets."""

    name = "brave"

    def __init__(
        self,
        api_key: str,
        *,
        timeout: float,
        base_url: str = BRAVE_URL,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"X-Subscription-Token": api_key}
        self._client = make_client(base_url, timeout=timeout, headers=headers, transport=transport)

    async def search(self, query: str, *, max_results: int) -> list[SearchResult]:
        """Up to max_results web hits (Brave's count is 1-20), plain text without highlight markup."""
        params: dict[str, str | int] = {"q": query, "count": min(max_results, 20), "text_decorations": "false"}
        page = await fetch_json(self._client, self.name, "GET", "web/search", _Page, params=params)
        hits = page.web.results if page.web else []
        results = [
            web_result(
                hit.title,
                hit.url,
                " ".join([hit.description or "", *(hit.extra_snippets or ())]),
                hit.page_age or hit.age,
            )
            for hit in hits
        ]
        return [result for result in results if result is not None][:max_results]

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
