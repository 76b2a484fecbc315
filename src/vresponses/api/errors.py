"""The one boundary where library errors become API errors, and the one handler that writes them."""

from __future__ import annotations

import logging

import msgspec
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from vresponses.engines.base import EngineBusy, EngineError, EngineRejected
from vresponses.errors import (
    APIError,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    TooManyRequests,
    Unavailable,
)
from vresponses.store.base import StoreError

log = logging.getLogger(__name__)


def _innermost(group: BaseExceptionGroup[BaseException]) -> BaseException:
    # A task group wraps what its tasks raised: the first real error inside is what the client should see.
    for inner in group.exceptions:
        found = _innermost(inner) if isinstance(inner, BaseExceptionGroup) else inner
        if isinstance(found, Exception):
            return found
    return group


def translate(exc: BaseException) -> APIError:
    """Map any exception to the API error the client sees; unknown ones are logged as bugs."""
    if isinstance(exc, BaseExceptionGroup):
        inner = _innermost(exc)
        if inner is not exc:
            return translate(inner)
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        # A task group around one request (e.g. a disconnect watcher) wraps the request's own error.
        return translate(exc.exceptions[0])
    if isinstance(exc, ValidationError):
        return from_validation(exc)
    if isinstance(exc, EngineRejected):
        return InvalidRequest(f"The engine rejected the request: {exc}")
    if isinstance(exc, EngineBusy):
        return TooManyRequests(f"The engine is at capacity: {exc}")
    if isinstance(exc, EngineError):
        return Unavailable(f"The engine is unavailable: {exc}", retry_after=getattr(exc, "retry_after", None))
    if isinstance(exc, StoreError):
        return Unavailable("The response store is unavailable; try again.")
    if isinstance(exc, HTTPException):
        if exc.status_code == 404:
            return NotFound("Unknown route.")
        if exc.status_code == 405:
            return MethodNotAllowed("Method not allowed on this route.")
        error = APIError(str(exc.detail))
        error.status = exc.status_code
        error.type = "invalid_request_error" if exc.status_code < 500 else "server_error"
        return error
    log.error("unexpected error", exc_info=exc)
    return InternalError("The server failed to handle this request.")


# Union branch labels pydantic puts in error locations: not fields, so never part of a param.
_BRANCHES = {"str", "int", "float", "bool", "[key]", "message", "function_call", "function_call_output", "reasoning",
             "item_reference", "compaction", "web_search_call", "custom_tool_call", "custom_tool_call_output",
             "unknown"}  # fmt: skip


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _BRANCHES or "[" in part or part[:1].isupper():
            continue  # pydantic's union branch labels are not fields
        else:
            out += f".{part}" if out else part
    return out


def from_validation(exc: ValidationError) -> InvalidRequest:
    """The most specific validation problem as a 400 naming the parameter."""
    errors = exc.errors(include_url=False)
    # In a union every branch reports; the one that got deepest into the value is the one the client meant.
    first = max(errors, key=lambda e: len(_loc(e["loc"])))
    param = _loc(first["loc"]) or None
    if first["type"] == "extra_forbidden":
        return InvalidRequest(f"Unrecognized request argument supplied: {param}", param=param)
    if first["type"] == "missing":
        return InvalidRequest(f"Missing required parameter: '{param}'.", param=param)
    message = first["msg"].removeprefix("Value error, ")
    return InvalidRequest(f"Invalid value for '{param}': {message}." if param else message, param=param)


def body(exc: APIError) -> bytes:
    """The error shape `{"error": {message, type, param, code}}`."""
    return msgspec.json.encode(
        {"error": {"message": exc.message, "type": exc.type, "param": exc.param, "code": exc.code}}
    )


def response(exc: APIError) -> Response:
    """The JSON error response for an APIError."""
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    if exc.status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    return Response(body(exc), status_code=exc.status, media_type="application/json", headers=headers)


async def handler(request: Request, exc: Exception) -> Response:
    """Starlette exception handler: every error leaves through here."""
    return response(translate(exc))
