"""One real server for the e2e session: vLLM engine, SmolLM2-135M-Instruct, SQLite store, the gradient SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gradient import Gradient

from tests.e2e.server import Server

KEY = "e2e-key-primary"
OTHER_KEY = "e2e-key-other"
MODEL = "SmolLM2-135M-Instruct"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("server")
    srv = Server(f"sqlite:///{base / 'responses.db'}", KEY, base / "server.log", "--api-key", OTHER_KEY)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def client(server: Server) -> Iterator[Gradient]:
    with Gradient(model_access_key=KEY, base_url=server.url + "/v1", max_retries=0, timeout=300) as c:
        yield c


@pytest.fixture(scope="session")
def other_client(server: Server) -> Iterator[Gradient]:
    with Gradient(model_access_key=OTHER_KEY, base_url=server.url + "/v1", max_retries=0, timeout=300) as c:
        yield c


@pytest.fixture(scope="session")
def tmp_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")
