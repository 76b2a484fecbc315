"""Opaque carriers for content a stateless client hands back: reasoning (`encrypted_content`) and compactions.

They are encoded, not secret: the text was the client's to see. What matters is that a client can return them
unchanged and get the same conversation, and that a malformed one is a clear 400.
"""

from __future__ import annotations

import base64
import zlib

from vresponses.errors import InvalidRequest

PREFIX = "vr1."
# A sealed value is decompressed at most to this size (a hostile one cannot balloon in memory).
MAX_OPEN_BYTES = 4 * 1024 * 1024


def seal(text: str) -> str:
    """An opaque, URL-safe token holding text."""
    return PREFIX + base64.urlsafe_b64encode(zlib.compress(text.encode(), 6)).decode()


def unseal(token: str, param: str) -> str:
    """The text a seal() token holds; InvalidRequest (naming param) for anything else."""
    if not token.startswith(PREFIX):
        raise InvalidRequest("This encrypted_content was not issued by this server.", param=param)
    try:
        packed = base64.urlsafe_b64decode(token[len(PREFIX) :].encode())
        inflater = zlib.decompressobj()
        raw = inflater.decompress(packed, MAX_OPEN_BYTES)
        if inflater.unconsumed_tail:
            raise InvalidRequest("This encrypted_content is too large.", param=param)
        return raw.decode()
    except (ValueError, zlib.error, UnicodeDecodeError):
        raise InvalidRequest("This encrypted_content is damaged.", param=param) from None
