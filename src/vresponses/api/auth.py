"""Bearer keys: when keys are configured every route but /health needs one; compared in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from starlette.requests import HTTPConnection

from vresponses.errors import Unauthorized


class Keys:
    """The configured API keys; an empty set means the server is open."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._keys = [k.encode() for k in keys if k]

    @property
    def required(self) -> bool:
        """Whether requests must carry a key."""
        return bool(self._keys)

    def check(self, request: HTTPConnection) -> str | None:
        """Return the request's key (None when the server is open); raise Unauthorized otherwise."""
        if not self._keys:
            return None
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Missing API key: send 'Authorization: Bearer <key>'.")
        given = token.strip().encode()
        # Compare against every key so timing does not reveal which one (or how much of one) matched.
        ok = False
        for key in self._keys:
            ok |= hmac.compare_digest(given, key)
        if not ok:
            raise Unauthorized("Incorrect API key provided.")
        return token.strip()
