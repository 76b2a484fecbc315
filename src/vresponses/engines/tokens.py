"""A token's raw bytes, for logprobs: byte-level BPE and byte-fallback tokens are not valid UTF-8 on their own."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Protocol

_BYTE_FALLBACK = re.compile(r"<0x([0-9A-Fa-f]{2})>")


class _Vocab(Protocol):
    def convert_ids_to_tokens(self, ids: int) -> str: ...

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...


@lru_cache(maxsize=1)
def _byte_level_alphabet() -> dict[str, int]:
    # GPT-2's byte-level BPE writes each byte as one printable character: printable Latin-1 stands for itself,
    # the rest is shifted past U+0100.
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = list(printable)
    shift = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + shift)
            shift += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


def token_bytes(token: str, byte_level: bool) -> bytes:
    """The bytes a vocabulary entry stands for: `<0xNN>` byte fallback, byte-level BPE, or SentencePiece text."""
    match = _BYTE_FALLBACK.fullmatch(token)
    if match is not None:
        return bytes([int(match.group(1), 16)])
    alphabet = _byte_level_alphabet()
    if byte_level and all(c in alphabet for c in token):
        return bytes(alphabet[c] for c in token)
    return token.replace("▁", " ").encode()


def is_byte_level(vocab: _Vocab) -> bool:
    """Whether the vocabulary spells bytes GPT-2 style (a space is 'Ġ') rather than SentencePiece style ('▁')."""
    try:
        spelled = [vocab.convert_ids_to_tokens(i) for i in vocab.encode(" hello world", add_special_tokens=False)]
    except Exception:  # a tokenizer that cannot say: treat entries as text
        return False
    return any(isinstance(t, str) and "Ġ" in t for t in spelled)


class TokenBytes:
    """Raw bytes per token id for one tokenizer, cached (a vocabulary is finite; logprob streams repeat ids)."""

    def __init__(self, vocab: _Vocab) -> None:
        self._vocab = vocab
        self._byte_level = is_byte_level(vocab)
        self._cache: dict[int, bytes] = {}

    def __call__(self, token_id: int) -> bytes:
        """The token's bytes; an id the vocabulary does not know gives b''."""
        cached = self._cache.get(token_id)
        if cached is None:
            try:
                token = self._vocab.convert_ids_to_tokens(token_id)
            except (IndexError, KeyError, TypeError, ValueError, OverflowError):
                token = None
            cached = self._cache[token_id] = token_bytes(token, self._byte_level) if isinstance(token, str) else b""
        return cached
