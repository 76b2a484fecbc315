"""Issue 10 end to end on the offline index: `--web-search local=<folder>` on the real engine and model."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from transformers import PreTrainedTokenizerBase

from tests.e2e.conftest import KEY
from tests.e2e.search_support import FORCE, RESULTS, SOURCES, create, tokenizer, tokens
from tests.e2e.server import Server
from vresponses.websearch.local import LocalIndex

__all__ = ["tokenizer"]  # a shared fixture, used here by name

DOCS = {
    "paris.md": "# Paris\nParis is the capital of France. The Eiffel Tower stands in Paris, on the Seine.\n",
    "rome.md": "# Rome\nRome is the capital of Italy, on the Tiber. The Colosseum is in Rome.\n",
    "notes/tokyo.txt": "Tokyo is the capital of Japan and its largest city.\n",
}


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("docs")
    for name, text in DOCS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def server(docs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("local")
    srv = Server(f"sqlite:///{base / 'responses.db'}", KEY, base / "server.log", "--web-search", f"local={docs}")
    srv.start()
    yield srv
    srv.stop()


def test_forced_search_reads_the_folder(server: Server, docs: Path, tokenizer: PreTrainedTokenizerBase) -> None:
    body = create(server, "/openai/v1/responses", tool_choice=FORCE, include=[RESULTS, SOURCES])
    search, *rest = body["output"]
    assert search["type"] == "web_search_call" and search["status"] == "completed"
    query = search["action"]["query"]
    index = LocalIndex(docs)
    expected = index.search_sync(" ".join(query.split()), 5)
    asyncio.run(index.aclose())
    assert [s["url"] for s in search["action"]["sources"]] == [r.url for r in expected]
    for hit in expected:
        assert f"URL: {hit.url}" in search["results"]
    assert rest and rest[0]["type"] == "message" and rest[0]["content"][0]["text"]
    usage = body["usage"]["output_tokens_details"]
    assert usage["tool_output_tokens"] == tokens(tokenizer, search["results"]) > 0
