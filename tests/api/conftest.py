"""The app on the scripted fake engine and the in-memory store: for tests of the layers above the engine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from vresponses.app import create_app
from vresponses.engines.fake import FakeEngine
from vresponses.pipeline.jobs import JobsConfig
from vresponses.settings import Settings
from vresponses.store.memory import MemoryStore

KEY = "test-key-123"


@pytest.fixture
def fake() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def client(fake: FakeEngine) -> Iterator[TestClient]:
    settings = Settings(api_keys=(KEY, "other-key"), max_body_bytes=64 * 1024)
    app = create_app(
        settings,
        engine_factory=lambda _: fake,
        store=MemoryStore(),
        jobs_config=JobsConfig(max_jobs=2, tick_seconds=0.05, lease_seconds=1.0),
    )
    with TestClient(app, headers={"Authorization": f"Bearer {KEY}"}) as c:
        yield c
