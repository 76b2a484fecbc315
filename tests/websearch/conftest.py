"""Recorded provider responses and a mock HTTP transport that keeps the requests it saw."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_json(name: str) -> object:
    """A recorded provider response, parsed."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


class Recorder:
    """A MockTransport whose answer a test chooses, remembering every request it was sent."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.requests: list[httpx.Request] = []
        self.answer = answer
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)


@pytest.fixture
def recorder() -> Callable[[Callable[[httpx.Request], httpx.Response]], Recorder]:
    return Recorder
