"""`--web-search PROVIDER[=CONFIG]` parsed into a provider, with errors that say how to fix the value."""

from __future__ import annotations

import re
from collections.abc import Mapping

import httpx

from vresponses.websearch.base import DEFAULT_TIMEOUT, SearchConfigError, SearchProvider

USAGE = "searxng=URL, ddgs[=BACKENDS], brave, tavily or local=PATH"
KEY_VARIABLES = {"brave": "BRAVE_API_KEY", "tavily": "TAVILY_API_KEY"}
_BACKENDS = re.compile(r"[a-z_]+(,[a-z_]+)*")


def make_provider(
    spec: str,
    *,
    env: Mapping[str, str],
    timeout: float = DEFAULT_TIMEOUT,
    transport: httpx.AsyncBaseTransport | None = None,
) -> SearchProvider:
    """The provider a `--web-search` value names; API keys come from env (the settings' view of the environment).

    A `local=PATH` index is built here, once, before the server takes requests.
    """
    name, has_config, config = spec.partition("=")
    name, config = name.strip().lower(), config.strip()
    if timeout <= 0:
        raise SearchConfigError("the web search timeout must be a positive number of seconds")
    if name in ("searxng", "local") and not config:
        raise SearchConfigError(f"--web-search {name} needs a value: {name}={'URL' if name == 'searxng' else 'PATH'}")
    if name in KEY_VARIABLES and has_config:
        raise SearchConfigError(f"--web-search {name} takes no value; its API key comes from {KEY_VARIABLES[name]}")
    if name == "searxng":
        from vresponses.websearch.searxng import SearxngProvider

        return SearxngProvider(config, timeout=timeout, transport=transport)
    if name == "local":
        from vresponses.websearch.local import LocalIndex

        return LocalIndex(config)
    if name == "ddgs":
        from vresponses.websearch.metasearch import DdgsProvider

        backend = config.replace(" ", "") or "auto"
        if not _BACKENDS.fullmatch(backend):
            raise SearchConfigError(
                "--web-search ddgs=BACKENDS takes comma-separated names, like ddgs=duckduckgo,brave"
            )
        return DdgsProvider(timeout=timeout, backend=backend)
    if name in KEY_VARIABLES:
        key = env.get(KEY_VARIABLES[name], "").strip()
        if not key:
            raise SearchConfigError(
                f"--web-search {name} needs its API key in the environment variable {KEY_VARIABLES[name]}"
            )
        if name == "brave":
            from vresponses.websearch.brave import BraveProvider

            return BraveProvider(key, timeout=timeout, transport=transport)
        from vresponses.websearch.tavily import TavilyProvider

        return TavilyProvider(key, timeout=timeout, transport=transport)
    raise SearchConfigError(f"--web-search {spec.strip()!r} names no provider; use one of {USAGE}")
