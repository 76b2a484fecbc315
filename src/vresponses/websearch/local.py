"""An offline index over a folder of .txt, .md and .html files: SQLite FTS5, ranked by BM25, built once at start."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sqlite3
import threading
from pathlib import Path

from vresponses.websearch.base import SearchConfigError, SearchResult
from vresponses.websearch.text import clip, html_to_text, squash

log = logging.getLogger(__name__)

SUFFIXES = frozenset({".txt", ".md", ".markdown", ".html", ".htm"})
MAX_FILES = 10_000
# A longer file is indexed by its first MAX_FILE_BYTES; the whole folder stops at MAX_TOTAL_BYTES.
MAX_FILE_BYTES = 1024 * 1024
MAX_TOTAL_BYTES = 256 * 1024 * 1024
MAX_QUERY_TERMS = 32
# FTS5's snippet() returns at most 64 tokens.
SNIPPET_TOKENS = 64
_WORD = re.compile(r"\w+")
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _document(path: Path, raw: bytes) -> tuple[str, str]:
    """The (title, text) of one file; HTML is reduced to its visible text, others are read as they are."""
    text = raw.decode("utf-8", errors="replace").removeprefix("\ufeff")
    title = ""
    if path.suffix.lower() in (".html", ".htm"):
        title, text = html_to_text(text)
    elif path.suffix.lower() in (".md", ".markdown") and (heading := _MD_HEADING.search(text)):
        title = heading.group(1)
    return clip(squash(title), 300) or path.stem, text


def match_expression(query: str) -> str | None:
    """The FTS5 query for a free-text query: each word quoted (so no FTS5 syntax survives), any word may match."""
    terms = list(dict.fromkeys(word.lower() for word in _WORD.findall(query)))[:MAX_QUERY_TERMS]
    return " OR ".join(f'"{term}"' for term in terms) if terms else None


class LocalIndex:
    """Full-text search over one folder, indexed in memory when constructed; safe to search from many tasks."""

    name = "local"

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        max_files: int = MAX_FILES,
        max_file_bytes: int = MAX_FILE_BYTES,
        max_total_bytes: int = MAX_TOTAL_BYTES,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise SearchConfigError(f"--web-search local=PATH: {str(root)!r} is not a folder")
        # One connection shared by worker threads; the lock serialises them (a query takes milliseconds).
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute(
            "CREATE VIRTUAL TABLE docs USING fts5(path UNINDEXED, title, body,"
            " tokenize='unicode61 remove_diacritics 2')"
        )
        self.documents = self._build(max_files, max_file_bytes, max_total_bytes)
        log.info("web search: indexed %d files under %s", self.documents, self.root)

    def _files(self) -> list[Path]:
        """Indexable files under the root in a stable order; hidden entries and symlinks are skipped."""
        found = []
        for folder, dirs, files in os.walk(self.root, followlinks=False):
            dirs[:] = sorted(name for name in dirs if not name.startswith("."))
            for name in sorted(files):
                path = Path(folder, name)
                if not name.startswith(".") and path.suffix.lower() in SUFFIXES and not path.is_symlink():
                    found.append(path)
        return found

    def _build(self, max_files: int, max_file_bytes: int, max_total_bytes: int) -> int:
        count, total = 0, 0
        for path in self._files():
            if count >= max_files or total >= max_total_bytes:
                log.warning("web search: index of %s stopped at %d files, %d bytes", self.root, count, total)
                break
            try:
                with path.open("rb") as handle:
                    raw = handle.read(min(max_file_bytes, max_total_bytes - total))
            except OSError as exc:
                log.warning("web search: skipped %s: %s", path, exc)
                continue
            title, body = _document(path, raw)
            self._db.execute(
                "INSERT INTO docs (path, title, body) VALUES (?, ?, ?)",
                (path.relative_to(self.root).as_posix(), title, body),
            )
            count, total = count + 1, total + len(raw)
        self._db.commit()
        return count

    def search_sync(self, query: str, max_results: int) -> list[SearchResult]:
        """The best max_results files for query by BM25 (title words weigh five times body words)."""
        expression = match_expression(query)
        if expression is None:
            return []
        with self._lock:
            rows = self._db.execute(
                "SELECT path, title, snippet(docs, 2, '', '', '…', ?) FROM docs WHERE docs MATCH ?"
                " ORDER BY bm25(docs, 0.0, 5.0, 1.0) LIMIT ?",
                (SNIPPET_TOKENS, expression, max_results),
            ).fetchall()
        return [SearchResult(title=title, url=path, snippet=squash(snippet)) for path, title, snippet in rows]

    async def search(self, query: str, *, max_results: int) -> list[SearchResult]:
        """search_sync on a worker thread, so a large index never blocks the event loop."""
        return await asyncio.to_thread(self.search_sync, query, max_results)

    async def aclose(self) -> None:
        """Drop the index."""
        with self._lock:
            self._db.close()
