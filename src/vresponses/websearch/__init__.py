"""Web search for the built-in `web_search` tool: providers behind one protocol, and the text the model reads.

Below the pipeline: nothing here imports the api or the pipeline.
"""

from vresponses.websearch.base import (
    DEFAULT_TIMEOUT,
    MAX_RESULTS,
    SearchConfigError,
    SearchError,
    SearchProvider,
    SearchResult,
    run_search,
)
from vresponses.websearch.config import make_provider
from vresponses.websearch.output import Limits, ToolOutput, format_failure, format_results, neutralize

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_RESULTS",
    "Limits",
    "SearchConfigError",
    "SearchError",
    "SearchProvider",
    "SearchResult",
    "ToolOutput",
    "format_failure",
    "format_results",
    "make_provider",
    "neutralize",
    "run_search",
]
