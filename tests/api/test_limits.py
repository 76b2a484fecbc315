"""Size limits: clear 400s naming the limit, checked before the work that grows with the request."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.api.conftest import KEY

from vresponses.app import create_app
from vresponses.engines.fake import FakeEngine, FakeTokenizer
from vresponses.pipeline.limits import Limits
from vresponses.settings import Settings
from vresponses.store.memory import MemoryStore

M = "fake-model"
LIMITS = Limits(max_input_items=4, max_tools=2, max_item_bytes=1000, max_stored_bytes=3000, max_chain_bytes=4000)


class RecordingTokenizer(FakeTokenizer):
    """Remembers which threads tokenized."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        self.threads.append(threading.current_thread())
        return super().encode(text, add_special_tokens)


@pytest.fixture
def small(fake: FakeEngine) -> Iterator[TestClient]:
    settings = Settings(api_keys=(KEY,), max_body_bytes=1024 * 1024, limits=LIMITS)
    app = create_app(settings, engine_factory=lambda _: fake, store=MemoryStore())
    with TestClient(app, headers={"Authorization": f"Bearer {KEY}"}) as c:
        yield c


def _error(r: Any) -> dict[str, Any]:
    assert r.status_code == 400, r.text
    error: dict[str, Any] = r.json()["error"]
    return error


def test_too_many_items_or_tools(small: TestClient) -> None:
    error = _error(small.post("/v1/responses", json={"model": M, "input": [{"role": "user", "content": "x"}] * 5}))
    assert error["param"] == "input" and error["code"] == "too_many_input_items" and "4" in error["message"]
    tools = [{"type": "function", "name": f"t{i}"} for i in range(3)]
    error = _error(small.post("/v1/responses", json={"model": M, "input": "x", "tools": tools}))
    assert error["param"] == "tools" and error["code"] == "too_many_tools"


def test_an_item_too_large_is_named(small: TestClient) -> None:
    items = [
        {"role": "user", "content": "x"},
        {"type": "reasoning", "content": [{"type": "reasoning_text", "text": "e" * 2000}]},
    ]
    error = _error(small.post("/v1/responses", json={"model": M, "input": items}))
    assert error["param"] == "input[1]" and error["code"] == "input_item_too_large"


def test_what_a_request_stores_is_bounded_even_when_never_tokenized(small: TestClient, fake: FakeEngine) -> None:
    # Tools under tool_choice "none" are never rendered; max_tokens 0 never reaches the engine: both still count.
    tools = [{"type": "function", "name": "t", "description": "d" * 3000}]
    body = {"model": M, "input": "x", "tools": tools, "tool_choice": "none", "max_tokens": 0}
    error = _error(small.post("/v1/responses", json=body))
    assert error["param"] == "input" and error["code"] == "request_too_large"
    assert fake.requests == []


def test_a_chain_past_its_byte_cap_is_refused(small: TestClient) -> None:
    previous = None
    for _ in range(8):
        body: dict[str, Any] = {
            "model": M,
            "input": [{"type": "reasoning", "content": [{"type": "reasoning_text", "text": "e" * 900}]}],
        }
        if previous:
            body["previous_response_id"] = previous
        r = small.post("/v1/responses", json={**body, "max_tokens": 0})
        if r.status_code != 200:
            break
        previous = r.json()["id"]
    error = _error(r)
    assert error["param"] == "previous_response_id" and error["code"] == "conversation_too_large"


def test_rendering_and_tokenizing_run_off_the_event_loop() -> None:
    tokenizer = RecordingTokenizer()
    fake = FakeEngine(tokenizer=tokenizer)
    app = create_app(Settings(), engine_factory=lambda _: fake, store=MemoryStore())
    with TestClient(app) as client:
        loop_threads = set()
        client.portal.call(lambda: loop_threads.add(threading.current_thread()))  # type: ignore[union-attr]
        assert client.post("/v1/responses", json={"model": M, "input": "hi"}).status_code == 200
    assert tokenizer.threads and not set(tokenizer.threads) & loop_threads
