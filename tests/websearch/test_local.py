"""The offline index: what it reads from a folder, how it ranks, and that no query string can break it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from vresponses.websearch.base import SearchConfigError, run_search
from vresponses.websearch.local import LocalIndex, match_expression


def write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    write(tmp_path, "install.md", "# Installing the frobnicator\n\nRun `pip install frobnicator` to install it.\n")
    write(tmp_path, "guide/usage.txt", "Usage notes. The frobnicator is mentioned once here among many other words.\n")
    write(
        tmp_path,
        "guide/page.html",
        "<html><head><title>Widget &amp; gadget handbook</title><style>.zebra { color: red }</style></head>"
        "<body><script>var zebra = 'quagga';</script><h1>Widgets</h1><p>Widgets are <b>small</b> parts."
        "</p><p>Gadgets&nbsp;hold widgets.</p></body></html>",
    )
    write(tmp_path, "cafe.md", "Le café crème est servi à Zürich. 東京の天気は晴れ。\n")
    write(tmp_path, "script.py", "frobnicator = 'not indexed: not a text, Markdown or HTML file'\n")
    write(tmp_path, ".hidden/secret.md", "frobnicator hidden folder\n")
    write(tmp_path, ".secret.md", "frobnicator hidden file\n")
    return tmp_path


async def test_indexes_only_visible_text_markdown_and_html_files(docs: Path) -> None:
    index = LocalIndex(docs)
    assert index.documents == 4
    hits = await index.search("frobnicator", max_results=10)
    assert [hit.url for hit in hits] == ["install.md", "guide/usage.txt"]
    await index.aclose()


async def test_ranks_by_bm25_with_titles_weighing_more(docs: Path) -> None:
    write(docs, "z-first-alphabetically.txt", "nothing relevant")
    index = LocalIndex(docs)
    (best, second) = await index.search("install frobnicator", max_results=5)
    assert best.url == "install.md" and best.title == "Installing the frobnicator"
    assert second.url == "guide/usage.txt" and second.title == "usage"


async def test_html_is_reduced_to_visible_text(docs: Path) -> None:
    index = LocalIndex(docs)
    (hit,) = await index.search("gadgets", max_results=5)
    assert hit.url == "guide/page.html" and hit.title == "Widget & gadget handbook"
    assert "Widgets are small parts." in hit.snippet and "Gadgets hold widgets." in hit.snippet
    assert "<" not in hit.snippet
    # Script and style contents are not page text.
    assert await index.search("quagga", max_results=5) == []
    assert await index.search("zebra", max_results=5) == []


async def test_unicode_words_and_diacritics(docs: Path) -> None:
    index = LocalIndex(docs)
    assert [hit.url for hit in await index.search("cafe zurich", max_results=5)] == ["cafe.md"]
    assert [hit.url for hit in await index.search("CAFÉ", max_results=5)] == ["cafe.md"]
    assert [hit.url for hit in await index.search("東京の天気は晴れ", max_results=5)] == ["cafe.md"]


HOSTILE = [
    '"NEAR(" OR *',
    "*",
    '"',
    "NEAR(a b, 3)",
    "title:secret",
    "^install",
    "AND OR NOT",
    "a' OR 1=1; DROP TABLE docs; --",
    "{frobnicator}",
    "frob*",
    "-install +usage",
    "\x00\x01 install \u200b",
    "install " * 5000,
]


@pytest.mark.parametrize("query", HOSTILE)
async def test_hostile_queries_never_raise(docs: Path, query: str) -> None:
    index = LocalIndex(docs)
    hits = await index.search(query, max_results=5)
    assert all(hit.url in {"install.md", "guide/usage.txt", "guide/page.html", "cafe.md"} for hit in hits)
    # The table is intact afterwards.
    assert [hit.url for hit in await index.search("widgets", max_results=5)] == ["guide/page.html"]


async def test_fts_operators_are_plain_words(docs: Path) -> None:
    write(docs, "logic.txt", "The words and, or and not appear here, as does near.")
    index = LocalIndex(docs)
    assert [hit.url for hit in await index.search("AND OR NOT near", max_results=5)] == ["logic.txt"]
    assert match_expression('"NEAR(" OR *') == '"near" OR "or"'
    assert match_expression("*** ((( ") is None


async def test_empty_query(docs: Path) -> None:
    index = LocalIndex(docs)
    assert await index.search("", max_results=5) == []
    assert await index.search("  ?! ", max_results=5) == []


async def test_bounds_on_files_and_bytes(tmp_path: Path) -> None:
    for n in range(5):
        write(tmp_path, f"doc{n}.txt", f"common word{n}")
    assert LocalIndex(tmp_path, max_files=3).documents == 3
    write(tmp_path, "big.txt", "early " + "filler " * 1000 + "lateword")
    index = LocalIndex(tmp_path, max_file_bytes=100)
    assert [hit.url for hit in await index.search("early", max_results=5)] == ["big.txt"]
    assert await index.search("lateword", max_results=5) == []
    # The folder's byte budget stops indexing, whatever the file count.
    assert LocalIndex(tmp_path, max_total_bytes=20).documents < 6


async def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside, "private.txt", "confidential payroll")
    root = tmp_path / "root"
    write(root, "public.txt", "public notes")
    (root / "link.txt").symlink_to(outside / "private.txt")
    (root / "linkdir").symlink_to(outside, target_is_directory=True)
    index = LocalIndex(root)
    assert index.documents == 1
    assert await index.search("confidential payroll", max_results=5) == []


async def test_concurrent_searches_agree(docs: Path) -> None:
    index = LocalIndex(docs)
    queries = ["frobnicator", "widgets", "café"] * 10
    answers = await asyncio.gather(*(run_search(index, q, max_results=5) for q in queries))
    first = {q: [hit.url for hit in a] for q, a in zip(queries[:3], answers[:3], strict=True)}
    assert first == {
        "frobnicator": ["install.md", "guide/usage.txt"],
        "widgets": ["guide/page.html"],
        "café": ["cafe.md"],
    }
    assert all([hit.url for hit in a] == first[q] for q, a in zip(queries, answers, strict=True))


def test_a_missing_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(SearchConfigError, match="is not a folder"):
        LocalIndex(tmp_path / "nope")
