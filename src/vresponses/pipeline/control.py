"""Control tokens: text a client sends may spell `<|im_start|>system`, but must never become those tokens.

A tokenizer recognises special-token strings anywhere in the text it is given, so encoding the rendered prompt
as one string would let user content forge turns. When no client string spells a control token (nearly
always) the prompt is encoded exactly as before, so prefix caching sees byte-identical prefixes. When one
does, those strings are wrapped in unguessable sentinels before rendering; the template renders them where it
puts content, the sentinels mark the spans, and each span is encoded so no control token can match inside it
while the template's own markers stay special. A template that transformed a wrapped string (sliced, stripped,
split it) breaks the sentinels or the text, and the request is refused rather than encoded unsafely.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any

from vresponses.engines.base import Tokenizer
from vresponses.errors import InvalidRequest

# Keys whose values the template reads as structure, never content.
_STRUCTURAL = frozenset({"role", "type"})


def special_strings(tokenizer: Tokenizer) -> tuple[str, ...]:
    """The text of every special (control) token the tokenizer recognises, longest first."""
    found = set(getattr(tokenizer, "all_special_tokens", ()) or ())
    for token in (getattr(tokenizer, "added_tokens_decoder", None) or {}).values():
        if getattr(token, "special", False):
            found.add(str(token.content))
    return tuple(sorted((s for s in found if s), key=lambda s: (-len(s), s)))


class ControlTokens:
    """Finds control-token text in client strings and encodes prompts so that text stays text."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        specials = special_strings(tokenizer)
        self._pattern = re.compile("|".join(map(re.escape, specials))) if specials else None

    def spelled(self, value: Any) -> bool:
        """Whether any string (or dict key) in value spells a control token."""
        if self._pattern is None:
            return False
        stack = [value]
        while stack:
            node = stack.pop()
            if isinstance(node, str):
                if self._pattern.search(node):
                    return True
            elif isinstance(node, dict):
                stack.extend(node.keys())
                stack.extend(node.values())
            elif isinstance(node, list | tuple):
                stack.extend(node)
        return False

    def encode_guarded(self, plain: str, render: Callable[[Callable[[Any], Any]], str], param: str) -> list[int]:
        """Token ids of the prompt `plain`, with client text that spells control tokens kept literal.

        render(mark) must rebuild `plain` with mark applied to the client data first (mark returns the data
        with every string that spells a control token wrapped in sentinels).
        """
        nonce = secrets.token_hex(8)
        open_, close = f"[[vr-literal-{nonce}:", f":{nonce}]]"
        marked = render(lambda value: self._wrap(value, open_, close))
        segments = _segments(marked, open_, close)
        if segments is None or "".join(text for text, _ in segments) != plain:
            raise InvalidRequest(
                "The input spells one of the model's control tokens, and this model's chat template changes the "
                "text around it, so it cannot be kept literal; remove the control-token text.",
                param=param,
            )
        ids: list[int] = []
        for text, literal in segments:
            ids.extend(self.literal(text) if literal else self._encode(text))
        return ids

    def literal(self, text: str) -> list[int]:
        """Token ids of text in which no control token is recognised: each spelled one is encoded split."""
        if self._pattern is None:
            return self._encode(text)
        ids: list[int] = []
        pos = 0
        for match in self._pattern.finditer(text):
            ids.extend(self._encode(text[pos : match.start()]))
            spelled = match.group()
            # Neither part contains the whole token, so neither can become it (a shorter one is split in turn).
            ids.extend(self.literal(spelled[:-1]))
            ids.extend(self._encode(spelled[-1]))
            pos = match.end()
        ids.extend(self._encode(text[pos:]))
        return ids

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False)) if text else []

    def _wrap(self, value: Any, open_: str, close: str) -> Any:
        if isinstance(value, str):
            return f"{open_}{value}{close}" if self.spelled(value) else value
        if isinstance(value, dict):
            return {
                self._wrap(k, open_, close): v if k in _STRUCTURAL else self._wrap(v, open_, close)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self._wrap(v, open_, close) for v in value]
        return value


def _segments(marked: str, open_: str, close: str) -> list[tuple[str, bool]] | None:
    """Split marked text into (text, is_client_literal) runs; None when the sentinels do not pair up."""
    out: list[tuple[str, bool]] = []
    pos = 0
    while (start := marked.find(open_, pos)) != -1:
        end = marked.find(close, start + len(open_))
        if end == -1 or open_ in marked[start + len(open_) : end] or close in marked[pos:start]:
            return None
        out.append((marked[pos:start], False))
        out.append((marked[start + len(open_) : end], True))
        pos = end + len(close)
    if close in marked[pos:]:
        return None
    out.append((marked[pos:], False))
    return [(text, literal) for text, literal in out if text]
