"""Bearer keys: when keys are configured every route but /health needs one; compared in constant time.

Only SHA-256 digests of the keys are held, so a key given as `sha256:<hex>` works like the key itself and no plain
key needs to sit on disk; the set can be replaced while serving (rotation).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from starlette.requests import HTTPConnection

from vresponses.errors import Unauthorized

DIGEST_PREFIX = "sha256:"


class KeyFormatError(ValueError):
    """A configured key is empty or a malformed digest; the message never holds the key."""


def digest_of(entry: str) -> bytes:
    """The SHA-256 digest a configured key stands for: `sha256:<64 hex>` as given, any other text hashed."""
    if not entry.strip():
        raise KeyFormatError("an API key is empty")
    if entry.startswith(DIGEST_PREFIX):
        hexdigest = entry[len(DIGEST_PREFIX) :].strip()
        try:
            raw = bytes.fromhex(hexdigest)
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise KeyFormatError("a 'sha256:' key must be followed by 64 hexadecimal digits")
        return raw
    return hashlib.sha256(entry.encode()).digest()


class Keys:
    """The accepted keys; `required` stays true once any key source is configured, even if it holds no key."""

    def __init__(self, keys: Iterable[str] = (), required: bool | None = None) -> None:
        self._digests = [digest_of(k) for k in keys]
        self.required = bool(self._digests) if required is None else required

    def __len__(self) -> int:
        return len(self._digests)

    def replace(self, keys: Iterable[str]) -> None:
        """Accept exactly these keys from now on (validated first: a bad entry leaves the set unchanged)."""
        self._digests = [digest_of(k) for k in keys]

    def check(self, request: HTTPConnection) -> str | None:
        """Return the request's key (None when the server is open); raise Unauthorized otherwise."""
        if not self.required:
            return None
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("Missing API key: send 'Authorization: Bearer <key>'.")
        given = hashlib.sha256(token.encode()).digest()
        # Compare against every key so timing does not reveal which one matched.
        ok = False
        for digest in self._digests:
            ok |= hmac.compare_digest(given, digest)
        if not ok:
            raise Unauthorized("Incorrect API key provided.")
        return token
