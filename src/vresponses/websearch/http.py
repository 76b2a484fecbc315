"""The one way providers call an HTTP search API: server-chosen URLs, timeouts, a size cap, typed decoding."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import httpx
import msgspec

from vresponses.websearch.base import SearchError

T = TypeVar("T")

# Real result pages are tens of KB; a bigger body is a broken or hostile service, so it is not read.
MAX_BODY_BYTES = 2 * 1024 * 1024
USER_AGENT = "vresponses-websearch/0.1"


def make_client(
    base_url: str,
    *,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None,
) -> httpx.AsyncClient:
    """An HTTP client bound to one configured service: no redirects, per-phase timeouts, bounded connections."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout),
        headers={"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})},
        follow_redirects=False,
        limits=httpx.Limits(max_connections=16, max_keepalive_connections=4),
        transport=transport,
    )


def _status_message(status: int) -> str:
    """A short account of a non-200 answer that says what an operator should look at and nothing more."""
    if status in (401, 403):
        return f"the search service refused the request (HTTP {status}); check its API key or access settings"
    if status == 429:
        return "the search service is rate-limiting requests (HTTP 429)"
    return f"the search service answered HTTP {status}"


async def fetch_json(
    client: httpx.AsyncClient,
    provider: str,
    method: str,
    path: str,
    into: type[T],
    *,
    params: Mapping[str, str | int] | None = None,
    json: object = None,
    max_bytes: int = MAX_BODY_BYTES,
) -> T:
    """The decoded body of one request to the client's service; any failure is a SearchError naming no URL or key."""
    request = client.build_request(method, path, params=params, json=json)
    try:
        response = await client.send(request, stream=True)
        try:
            if response.status_code != 200:
                raise SearchError(f"{provider}: {_status_message(response.status_code)}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise SearchError(f"{provider}: the search service sent more than {max_bytes} bytes")
        finally:
            await response.aclose()
    except httpx.TimeoutException:
        raise SearchError(f"{provider}: the search service did not answer in time") from None
    except httpx.HTTPError:
        # Connection refused, DNS failure, TLS error, a dropped connection: the message must not carry the URL.
        raise SearchError(f"{provider}: the search service is unreachable") from None
    try:
        return msgspec.json.decode(body, type=into)
    except msgspec.DecodeError:
        raise SearchError(f"{provider}: the search service sent a malformed response") from None
