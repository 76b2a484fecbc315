"""The search provider protocol, its result type and its one error, and the guarded call the pipeline makes."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

# Providers cap one page of results around here (Brave: 20; SearXNG: ~20 per page); more never helps a model.
MAX_RESULTS = 20
# Brave rejects queries over 400 characters / 50 words; no useful web query is longer.
MAX_QUERY_CHARS = 400
DEFAULT_TIMEOUT = 10.0


class SearchError(Exception):
    """A search failed (provider error, timeout, bad response or bad config); the message is safe to show."""


class SearchConfigError(SearchError, ValueError):
    """A `--web-search` value that names no provider, lacks its config, or lacks its API key."""


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One hit: where it is, what it is called, the text the model may read, and when it was published if known."""

    title: str
    url: str
    snippet: str
    published: str | None = None


class SearchProvider(Protocol):
    """Something that answers a query with up to max_results hits, raising SearchError on failure."""

    name: str

    async def search(self, query: str, *, max_results: int) -> list[SearchResult]:
        """The hits for query, best first; [] when there are none."""
        ...

    async def aclose(self) -> None:
        """Release connections and threads; called once at shutdown."""
        ...


def clean_query(query: str) -> str:
    """The query as sent to a provider: whitespace collapsed and cut to MAX_QUERY_CHARS at a word boundary."""
    query = " ".join(query.split())
    if len(query) > MAX_QUERY_CHARS:
        cut = query[:MAX_QUERY_CHARS]
        query = cut.rsplit(" ", 1)[0] if " " in cut else cut
    return query


async def run_search(
    provider: SearchProvider, query: str, *, max_results: int = 5, time_limit: float = DEFAULT_TIMEOUT
) -> list[SearchResult]:
    """Run one search within time_limit seconds; every failure, a hang included, is raised as SearchError."""
    query = clean_query(query)
    if not query:
        raise SearchError("the search query is empty")
    max_results = max(1, min(max_results, MAX_RESULTS))
    try:
        async with asyncio.timeout(time_limit):
            results = await provider.search(query, max_results=max_results)
    except SearchError:
        raise
    except TimeoutError:
        raise SearchError(f"{provider.name}: the search timed out after {time_limit:g} s") from None
    except Exception:
        # A provider bug must not fail the response; the traceback stays in the log, not in the model's context.
        log.exception("web search provider %s failed", provider.name)
        raise SearchError(f"{provider.name}: the search failed") from None
    return results[:max_results]
