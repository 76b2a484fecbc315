"""The gate in front of every route, answered before any body is read: 503 while the server drains, 415 for a POST
body not declared as JSON, and for the routes that generate the key, a 503 while the engine restarts, the admission
queue's 429 and the per-key limits (with their `x-ratelimit-*` headers).

Everything here is a few comparisons, so refusals stay fast however busy the engine is.
"""

from __future__ import annotations

import hashlib

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vresponses.api import errors
from vresponses.api.lifecycle import Lifecycle
from vresponses.errors import APIError, Unavailable, UnsupportedMediaType
from vresponses.pipeline.service import Prepared

# The routes that generate, in every dialect's prefix: the ones admission and per-key limits guard.
CREATE_PATHS = frozenset(
    f"{prefix}/v1/responses{tail}" for prefix in ("", "/gradient", "/openai") for tail in ("", "/compact")
)
JSON = "application/json"


def lifecycle_of(scope: Scope) -> Lifecycle:
    """The app's lifecycle (every app built by create_app has one)."""
    lifecycle: Lifecycle = scope["app"].state.lifecycle
    return lifecycle


def admit(request: HTTPConnection, prepared: Prepared, background: bool) -> None:
    """Route hook after preparation: check the request's prompt against the admission bounds (400 or 429)."""
    parts = lifecycle_of(request.scope).parts
    if parts is not None:
        parts.admission.admit(len(prepared.plan.prompt_token_ids), background=background)


def _has_body(headers: dict[bytes, bytes]) -> bool:
    length = headers.get(b"content-length")
    if length is not None:
        return length.strip() not in (b"", b"0")
    return b"transfer-encoding" in headers


def _is_json(headers: dict[bytes, bytes]) -> bool:
    media = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
    return media == JSON.encode()


class Gate:
    """ASGI middleware: the checks above, and a count of the requests being answered (a drain waits for it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lifecycle = lifecycle_of(scope)
        try:
            if lifecycle.closing:
                raise Unavailable("The server is shutting down; retry on another instance.", code="server_shutdown")
            if scope["method"] == "POST":
                headers = dict(scope["headers"])
                if _has_body(headers) and not _is_json(headers):
                    raise UnsupportedMediaType(f"POST bodies must be sent as 'Content-Type: {JSON}'.")
        except APIError as exc:
            await errors.response(exc)(scope, receive, send)
            return
        lifecycle.active += 1
        try:
            if scope["method"] == "POST" and scope["path"] in CREATE_PATHS:
                await self._create(lifecycle, scope, receive, send)
            else:
                await self.app(scope, receive, send)
        finally:
            lifecycle.active -= 1

    async def _create(self, lifecycle: Lifecycle, scope: Scope, receive: Receive, send: Send) -> None:
        parts = lifecycle.parts
        if parts is None:
            await self.app(scope, receive, send)
            return
        try:
            # A bad key is answered before any limit, and costs the limits nothing.
            key = parts.keys.check(Request(scope))
            # Per-key limits count by a digest of the key (the stored tenant id needs the store; this must not).
            tenant = hashlib.sha256(key.encode()).hexdigest() if key else ""
            if not parts.supervisor.available:
                unavailable = parts.supervisor.unavailable()
                raise Unavailable(str(unavailable), code="engine_unavailable", retry_after=unavailable.retry_after)
            parts.admission.has_room()
            limit_headers = await parts.limiter.acquire(tenant) if parts.limiter.enabled else {}
        except APIError as exc:
            response = errors.response(exc)
            response.headers.update(getattr(exc, "headers", {}))
            await response(scope, receive, send)
            return
        try:
            await self.app(scope, receive, _with_headers(send, limit_headers) if limit_headers else send)
        finally:
            if parts.limiter.enabled:
                parts.limiter.release(tenant)


def _with_headers(send: Send, extra: dict[str, str]) -> Send:
    async def sender(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for name, value in extra.items():
                headers[name] = value
        await send(message)

    return sender
