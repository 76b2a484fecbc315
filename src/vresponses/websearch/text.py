"""Turning provider text (HTML pages, highlighted snippets) into plain, bounded text."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from vresponses.websearch.base import SearchResult

# Elements whose content is never page text.
_SKIPPED = frozenset({"script", "style", "noscript", "template", "svg", "head", "iframe", "object"})
# Elements that end a line, so words on either side do not run together.
_BLOCKS = frozenset(
    {"p", "div", "br", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "pre"}
)
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


class _TextExtractor(HTMLParser):
    """Collects the visible text and the <title> of an HTML document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title_parts: list[str] = []
        self._skip_depth = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in _SKIPPED:
            self._skip_depth += 1
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in _SKIPPED:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)
        elif not self._skip_depth:
            self.parts.append(data)


def html_to_text(html: str) -> tuple[str, str]:
    """The (title, visible text) of an HTML document or fragment; scripts, styles and markup dropped."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    text = _SPACES.sub(" ", "".join(parser.parts))
    text = _BLANK_LINES.sub("\n\n", "\n".join(line.strip() for line in text.split("\n")))
    return squash("".join(parser.title_parts)), text.strip()


def strip_tags(fragment: str) -> str:
    """A snippet with its highlight markup (`<strong>`, entities) reduced to one line of text."""
    if "<" not in fragment and "&" not in fragment:
        return squash(fragment)
    return squash(html_to_text(fragment)[1])


def squash(text: str) -> str:
    """Text on one line: every run of whitespace, newlines included, becomes one space."""
    return " ".join(text.split())


def clip(text: str, limit: int) -> str:
    """Text cut to at most limit characters, at a word boundary when one is near, marked with an ellipsis."""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return text[:limit]
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit * 0.7:
        cut = cut[:space]
    return cut.rstrip() + "…"


# A provider's text for one hit is cut here; the formatter applies the configured, smaller limits.
MAX_SNIPPET_CHARS = 4000


def web_result(
    title: str | None, url: str | None, snippet: str | None, published: str | None = None
) -> SearchResult | None:
    """A hit from a web provider as a SearchResult, or None when it has no http(s) URL to cite."""
    url = (url or "").strip()
    if not url.lower().startswith(("http://", "https://")) or len(url) > 2048:
        return None
    # Raw text is cut before markup is stripped, so a huge field costs the event loop no more than a small one.
    return SearchResult(
        title=clip(strip_tags((title or "")[:2000]), 300) or url,
        url=url,
        snippet=clip(strip_tags((snippet or "")[: 4 * MAX_SNIPPET_CHARS]), MAX_SNIPPET_CHARS),
        published=squash(published or "")[:40] or None,
    )
