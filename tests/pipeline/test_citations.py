"""Citations: [n] markers and quoted URLs of the latest search results become url_citation spans."""

from __future__ import annotations

from vresponses.pipeline.citations import citations
from vresponses.pipeline.items import Source

SOURCES = (Source("https://a.example/x", "A"), Source("https://b.example/y", "B"))


def spans(text: str) -> list[tuple[str, str]]:
    return [(a.url, text[a.start_index : a.end_index]) for a in citations(text, SOURCES)]


def test_markers_and_urls_in_text_order() -> None:
    text = "See https://b.example/y, and [1]; also [2][1]."
    assert spans(text) == [
        ("https://b.example/y", "https://b.example/y"),
        ("https://a.example/x", "[1]"),
        ("https://b.example/y", "[2]"),
        ("https://a.example/x", "[1]"),
    ]


def test_a_list_marker_cites_each_result_and_unknown_numbers_cite_nothing() -> None:
    assert spans("Both [1, 2]. Not [3] or [0] or [x].") == [
        ("https://a.example/x", "[1, 2]"),
        ("https://b.example/y", "[1, 2]"),
    ]


def test_no_sources_no_citations() -> None:
    assert citations("[1]", ()) == () and citations("", SOURCES) == ()
