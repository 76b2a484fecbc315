"""The `ddgs` metasearch library (no API key): synchronous, so it runs on a small thread pool of its own."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from vresponses.websearch.base import SearchConfigError, SearchError, SearchResult
from vresponses.websearch.text import web_result

log = logging.getLogger(__name__)

# (query, max_results) -> ddgs's hits: dicts with "title", "href" and "body".
TextSearch = Callable[[str, int], list[Mapping[str, object]]]


def ddgs_text(*, timeout: float, backend: str) -> TextSearch:
    """The ddgs library's text search, imported only when this provider is configured."""
    try:
        from ddgs import DDGS
        from ddgs.exceptions import DDGSException
    except ImportError:
        raise SearchConfigError(
            "--web-search ddgs needs the ddgs package: pip install 'vresponses[websearch]'"
        ) from None

    def text(query: str, max_results: int) -> list[Mapping[str, object]]:
        # A DDGS per call: its engine cache and HTTP sessions are not documented as thread-safe.
        try:
            hits: list[Mapping[str, object]] = DDGS(timeout=max(1, round(timeout))).text(
                query, max_results=max_results, backend=backend
            )
        except DDGSException as exc:
            # ddgs reports "nothing found" as an exception; that is an empty result, not a failure.
            if "No results found" in str(exc):
                return []
            raise
        return hits

    return text


class DdgsProvider:
    """Searches through ddgs; at most `workers` searches run at once and each is abandoned after timeout seconds."""

    name = "ddgs"

    def __init__(
        self, *, timeout: float, backend: str = "auto", text: TextSearch | None = None, workers: int = 2
    ) -> None:
        self._timeout = timeout
        self._text = text if text is not None else ddgs_text(timeout=timeout, backend=backend)
        # A thread that outlives its timeout keeps its slot until ddgs's own timeout ends it, so hung searches
        # can never grow the number of threads.
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vresponses-ddgs")

    async def search(self, query: str, *, max_results: int) -> list[SearchResult]:
        """Up to max_results hits, or SearchError when ddgs fails or does not finish in time."""
        loop = asyncio.get_running_loop()
        call = functools.partial(self._text, query, max_results)
        try:
            async with asyncio.timeout(self._timeout):
                hits = await loop.run_in_executor(self._executor, call)
        except TimeoutError:
            raise SearchError("ddgs: the search did not finish in time") from None
        except Exception as exc:
            log.warning("ddgs search failed: %r", exc)
            raise SearchError(f"ddgs: the search failed ({type(exc).__name__})") from None
        results = [web_result(_text(hit, "title"), _text(hit, "href"), _text(hit, "body")) for hit in hits]
        return [result for result in results if result is not None][:max_results]

    async def aclose(self) -> None:
        """Stop taking searches; running threads finish on their own (they cannot be interrupted)."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def _text(hit: Mapping[str, object], key: str) -> str | None:
    value = hit.get(key)
    return value if isinstance(value, str) else None
