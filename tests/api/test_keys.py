"""Keys: digests, a key file that rotates while serving, refusing open or empty-key configurations, never a key in
logs, errors or /metrics; and POST bodies must be declared JSON."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from vresponses.api.auth import KeyFormatError, Keys
from vresponses.api.keys import ExposureError, KeyFileWatcher, KeySources, check_exposure, check_sources, read_key_file
from vresponses.app import create_app
from vresponses.engines.fake import FakeEngine
from vresponses.settings import Settings
from vresponses.store.memory import MemoryStore

PLAIN = "rotating-key-one"
NEXT = "rotating-key-two"


def sha(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys"
    path.write_text(f"# rotated by the operator\n\n{sha(PLAIN)}\n")
    return path


@pytest.fixture
def client(key_file: Path) -> Iterator[TestClient]:
    fake = FakeEngine()
    app = create_app(Settings(api_key_file=key_file), engine_factory=lambda _: fake, store=MemoryStore())
    with TestClient(app) as c:
        yield c


def test_a_digest_stands_for_its_key(client: TestClient) -> None:
    assert client.get("/v1/models", headers=bearer(PLAIN)).status_code == 200
    assert client.get("/v1/models", headers=bearer(sha(PLAIN))).status_code == 401  # the digest is not a key


def test_key_file_rotates_without_a_restart(client: TestClient, key_file: Path) -> None:
    assert client.get("/v1/models", headers=bearer(NEXT)).status_code == 401
    key_file.write_text(f"{NEXT}\n")
    client.app.state.lifecycle.reload_keys()  # what SIGHUP does; the watcher also sees the change by itself
    assert client.get("/v1/models", headers=bearer(NEXT)).status_code == 200
    assert client.get("/v1/models", headers=bearer(PLAIN)).status_code == 401


def test_an_emptied_key_file_accepts_no_key_and_never_opens_the_server(client: TestClient, key_file: Path) -> None:
    key_file.write_text("# every key revoked\n")
    client.app.state.lifecycle.reload_keys()
    assert client.get("/v1/models", headers=bearer(PLAIN)).status_code == 401
    assert client.get("/v1/models").status_code == 401


def test_an_unreadable_key_file_keeps_the_keys(
    client: TestClient, key_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key_file.write_text("sha256:not-hex\n")
    with caplog.at_level(logging.INFO):
        client.app.state.lifecycle.reload_keys()
        key_file.unlink()
        client.app.state.lifecycle.reload_keys()
    assert client.get("/v1/models", headers=bearer(PLAIN)).status_code == 200
    assert "line 1" in caplog.text


async def test_watcher_sees_a_replaced_file(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"{PLAIN}\n")
    sources = KeySources(file=path)
    keys = sources.load()
    watcher = KeyFileWatcher(sources, keys, interval=0.01)
    watcher.start()
    try:
        replacement = tmp_path / "keys.new"
        replacement.write_text(f"{NEXT}\n")
        os.replace(replacement, path)  # an atomic rotation: a new inode under the same name
        async with asyncio.timeout(5):
            while watcher.reloads == 0:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert len(keys) == 1
    finally:
        await watcher.close()


def test_keys_never_reach_logs_errors_or_metrics(
    client: TestClient, key_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        key_file.write_text(f"{NEXT}\n{PLAIN}\n")
        client.app.state.lifecycle.reload_keys()
        wrong = client.get("/v1/models", headers=bearer("guess-" + PLAIN))
        metrics = client.get("/metrics", headers=bearer(PLAIN))
    assert wrong.status_code == 401 and metrics.status_code == 200
    for key in (PLAIN, NEXT, hashlib.sha256(PLAIN.encode()).hexdigest()):
        assert key not in caplog.text and key not in wrong.text and key not in metrics.text


def test_key_file_format(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"  {PLAIN}  \n# comment\n\n{sha(NEXT)}\n")
    assert read_key_file(path) == [PLAIN, sha(NEXT)]
    path.write_text(f"{PLAIN}\nsha256:{'ab' * 31}\n")
    with pytest.raises(KeyFormatError) as info:
        read_key_file(path)
    assert "line 2" in str(info.value) and PLAIN not in str(info.value)


def test_keys_compare_digests() -> None:
    keys = Keys([PLAIN, sha(NEXT)])
    assert keys.required and len(keys) == 2
    with pytest.raises(KeyFormatError):
        Keys([" "])


def test_empty_keys_and_open_exposure_are_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyFormatError):
        check_sources([""], None, "127.0.0.1", False)
    with pytest.raises(KeyFormatError):
        check_sources([], tmp_path / "missing", "127.0.0.1", False)
    with pytest.raises(ExposureError):
        check_exposure("0.0.0.0", keys_configured=False, allow_unauthenticated=False)
    assert "WITHOUT authentication" in (check_exposure("0.0.0.0", False, True) or "")
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert check_exposure(host, False, False) is None
    assert check_exposure("0.0.0.0", True, False) is None


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--api-key", ""], {}, "empty"),
        ([], {"VRESPONSES_API_KEY": ""}, "empty"),
        (["--host", "0.0.0.0"], {}, "--allow-unauthenticated"),
    ],
)
def test_cli_refuses_to_serve_openly_by_mistake(args: list[str], env: dict[str, str], message: str) -> None:
    base = {k: v for k, v in os.environ.items() if k != "VRESPONSES_API_KEY"}
    done = subprocess.run(
        [sys.executable, "-m", "vresponses", "serve", "--model", "/nonexistent", *args],
        env={**base, **env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and message in done.stdout + done.stderr


def test_post_bodies_must_be_declared_json(client: TestClient) -> None:
    # A web page can POST text/plain cross-site without a preflight: such a body must never be acted on.
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = bearer(PLAIN) | ({"content-type": content_type} if content_type else {})
        r = client.post("/v1/responses", content=b'{"model": "fake-model", "input": "hi"}', headers=headers)
        assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    ok = client.post(
        "/v1/responses",
        content=b'{"model": "fake-model", "input": "hi"}',
        headers=bearer(PLAIN) | {"content-type": "application/json; charset=utf-8"},
    )
    assert ok.status_code == 200
    # A POST without a body (cancel) needs no content type.
    assert client.post("/v1/responses/resp_missing/cancel", headers=bearer(PLAIN)).status_code == 404
