"""Reading a request body: bounded in size, valid JSON, an object, and not nested deeper than validators recurse."""

from __future__ import annotations

from typing import Any

import anyio
import msgspec
from starlette.requests import Request

from vresponses.errors import BodyTooLarge, InvalidRequest

MAX_DEPTH = 64


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object; 413 beyond limit bytes, 400 for anything that is not a sane JSON object."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"The request body is larger than {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"The request body is larger than {limit} bytes.")
        chunks.append(chunk)
    # Decoding and the depth walk are linear but not small for 8 MB: off the event loop.
    return await anyio.to_thread.run_sync(decode_object, b"".join(chunks))


def decode_object(raw: bytes | str) -> dict[str, Any]:
    """Decode one JSON object (a body, a WebSocket message); InvalidRequest otherwise."""
    if not raw.strip():
        raise InvalidRequest("The request body is empty; send a JSON object.")
    try:
        data = msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidRequest(f"The request body nests deeper than {MAX_DEPTH} levels.") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    if depth(data) > MAX_DEPTH:
        # Validators and schema checkers below recurse; refuse what would exhaust their stack.
        raise InvalidRequest(f"The request body nests deeper than {MAX_DEPTH} levels.")
    return data


def depth(value: Any) -> int:
    """How deeply lists and objects nest in a decoded JSON value (iteratively: no recursion to exhaust)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest
