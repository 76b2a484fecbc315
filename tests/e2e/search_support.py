"""What the web search end-to-end modules share: the request they send and the model's tokenizer to count with."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from tests.e2e.conftest import KEY, MODEL
from tests.e2e.server import Server
from vresponses.models.prepare import default_model_dir
from vresponses.settings import default_home

WEB = {"type": "web_search"}
FORCE = {"type": "web_search"}
RESULTS = "web_search_call.results"
SOURCES = "web_search_call.action.sources"
QUESTION = "What is the capital of France?"
# Room for the forced call (~25 tokens) and the start of an answer.
MAX = 64


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerBase:
    # The server's own model folder (make run prepares it under the same data directory).
    return AutoTokenizer.from_pretrained(default_model_dir(default_home()))


def tokens(tokenizer: PreTrainedTokenizerBase, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False))


def create(server: Server, path: str = "/v1/responses", **body: Any) -> dict[str, Any]:
    payload = {"model": MODEL, "input": QUESTION, "tools": [WEB], "temperature": 0, "max_output_tokens": MAX, **body}
    r = httpx.post(server.url + path, json=payload, headers={"Authorization": f"Bearer {KEY}"}, timeout=600)
    assert r.status_code == 200, r.text
    return dict(r.json())
