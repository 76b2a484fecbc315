"""Where an answer cites a web search: `url_citation` annotations for `[n]` markers and quoted source URLs."""

from __future__ import annotations

import re
from collections.abc import Sequence

from vresponses.pipeline.items import Annotation, Source

# The search results tell the model to cite like [1]; models also write [1, 2] or [1][2].
_MARKER = re.compile(r"\[(\d{1,2}(?:\s*,\s*\d{1,2})*)\]")
_NUMBER = re.compile(r"\d+")


def citations(text: str, sources: Sequence[Source]) -> tuple[Annotation, ...]:
    """Annotations for the spans of text that cite sources ([1] is sources[0]), in text order.

    A marker naming several results annotates its span once per result; a number with no result is no citation.
    """
    if not sources or not text:
        return ()
    found: list[Annotation] = []
    for marker in _MARKER.finditer(text):
        for number in _NUMBER.findall(marker.group(1)):
            n = int(number)
            if 1 <= n <= len(sources):
                source = sources[n - 1]
                found.append(Annotation(source.url, source.title, marker.start(), marker.end()))
    for source in sources:
        if not source.url:
            continue
        start = text.find(source.url)
        while start != -1:
            end = start + len(source.url)
            found.append(Annotation(source.url, source.title, start, end))
            start = text.find(source.url, end)
    return tuple(sorted(found, key=lambda a: (a.start_index, a.end_index)))
