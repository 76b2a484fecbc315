"""`make run` exactly as the README gives it, with nothing in the environment: it starts, sizes its KV cache, serves."""

from __future__ import annotations

from pathlib import Path

from gradient import Gradient

from tests.e2e.conftest import MODEL
from tests.e2e.server import Server


def test_make_run_serves_on_this_machine(tmp_path: Path) -> None:
    # Compiled, not eager, and no engine flags: the user's command. Only the port, key and store differ.
    srv = Server(f"sqlite:///{tmp_path / 'db.sqlite'}", "make-run-key", tmp_path / "server.log", fast=False)
    srv.start(timeout=420)
    try:
        with Gradient(model_access_key="make-run-key", base_url=srv.url + "/v1", max_retries=0, timeout=120) as c:
            response = c.responses.create(model=MODEL, input="Say hello.", max_output_tokens=8, temperature=0)
        assert response.choices[0].finish_reason in ("stop", "length")
        assert response.choices[0].message.content
        log = srv.log_path.read_text()
        assert "KV cache" in log and "GiB on CPU" in log  # the chosen size is logged at start
    finally:
        srv.stop()
