"""Codex CLI (npm `@openai/codex`, pinned in the Makefile) against the real server, as a user would point it there.

Codex runs with its own home in a temporary folder, a custom provider (`wire_api = "responses"`) at the server's
`/openai/v1`, its update check, analytics and plugin sync off, and every proxy variable aimed at a closed local
port: it can reach nothing but the server.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import KEY, MODEL
from tests.e2e.server import ROOT, Server

CODEX = ROOT / ".venv" / "codex" / "node_modules" / ".bin" / "codex"
PINNED = re.search(r"^CODEX_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
NO_NETWORK = "http://127.0.0.1:9"  # nothing listens there: any request that is not for the server fails at once

if shutil.which("npm") is None:
    pytestmark = pytest.mark.skip(reason="npm is not installed, so Codex CLI (npm @openai/codex) cannot be installed")
elif not CODEX.exists():
    pytestmark = pytest.mark.skip(reason="Codex CLI is not installed here: `make test` installs it into .venv/codex")

# Settings that keep Codex off the network and its own services; the provider is this server.
BASE = """\
model = "{model}"
model_provider = "vresponses"
check_for_update_on_startup = false

[analytics]
enabled = false

[features]
plugins = false

[model_providers.vresponses]
name = "vresponses"
base_url = "{base_url}"
env_key = "VRESPONSES_API_KEY"
wire_api = "responses"
"""
# The README's configuration for a small model: short instructions, only the tools wanted, the real context size.
FITTED = """\
model = "{model}"
model_provider = "vresponses"
model_instructions_file = "{instructions}"
model_context_window = {context}
check_for_update_on_startup = false
web_search = "disabled"
include_permissions_instructions = false
include_environment_context = false
include_apps_instructions = false
project_doc_max_bytes = 0

[analytics]
enabled = false

[features]
apps = false
plugins = false
goals = false
view_image = false
unified_exec = false
shell_tool = false
image_generation = false
skill_search = false
tool_suggest = false

[agents]
enabled = false

[skills.bundled]
enabled = false

[tools]
experimental_request_user_input = {{ enabled = false }}

[model_providers.vresponses]
name = "vresponses"
base_url = "{base_url}"
env_key = "VRESPONSES_API_KEY"
wire_api = "responses"
"""
METADATA_WARNING = "Model metadata for `{model}` not found"  # Codex knows no catalog entry for a local model


def posts(server: Server) -> list[str]:
    """The status of every POST /openai/v1/responses the server has answered, from its access log."""
    return re.findall(r'"POST /openai/v1/responses HTTP/1\.1" (\d+)', server.log_path.read_text(errors="replace"))


def codex_home(tmp_path: Path, template: str, server: Server) -> Path:
    home = tmp_path / "codex-home"
    home.mkdir()
    instructions = home / "instructions.md"
    instructions.write_text("You are a helpful assistant. Answer briefly.\n")
    context = httpx.get(
        server.url + "/openai/v1/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=30
    ).json()["data"][0]["max_model_len"]
    (home / "config.toml").write_text(
        template.format(model=MODEL, base_url=server.url + "/openai/v1", instructions=instructions, context=context)
    )
    return home


def codex(home: Path, *args: str, timeout: float) -> tuple[int, list[dict[str, Any]], str]:
    """Run `codex exec --json` with only its home, the key and closed proxies; its exit code, events and stderr."""
    workdir = home.parent / "work"
    workdir.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CODEX_HOME": str(home),
        "VRESPONSES_API_KEY": KEY,
        "NO_PROXY": "127.0.0.1,localhost",
        **{name: NO_NETWORK for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy")},
    }
    run = subprocess.run(
        [str(CODEX), "exec", "--json", "--strict-config", "--skip-git-repo-check", *args],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    return run.returncode, events, run.stderr


def errors_of(events: list[dict[str, Any]]) -> list[str]:
    """Every error Codex reported, but its note that it has no catalog entry for this model."""
    found = [e["message"] for e in events if e["type"] == "error"]
    found += [e["item"]["message"] for e in events if e["type"] == "item.completed" and e["item"]["type"] == "error"]
    return [m for m in found if METADATA_WARNING.format(model=MODEL) not in m]


def test_the_pinned_codex_is_the_one_that_runs() -> None:
    assert PINNED is not None
    out = subprocess.run([str(CODEX), "--version"], capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.split()[-1] == PINNED.group(1)


def test_default_config_is_told_the_context_is_exceeded_once(server: Server, tmp_path: Path) -> None:
    # Codex's own prompt and tools are ~10k tokens, more than the embedded model's context: the server must say so
    # in the form Codex understands, so that it reports it and stops (no crash, hang or retry loop).
    home = codex_home(tmp_path, BASE, server)
    before = len(posts(server))
    started = time.monotonic()
    code, events, stderr = codex(home, "Say hello.", timeout=180)
    assert code == 1, stderr
    assert events[-1]["type"] == "turn.failed"
    assert "ran out of room in the model's context window" in events[-1]["error"]["message"]
    assert posts(server)[before:] == ["400"]  # one request, answered once, never retried
    assert time.monotonic() - started < 180


def test_a_config_that_fits_completes_a_streamed_turn_and_its_continuation(server: Server, tmp_path: Path) -> None:
    home = codex_home(tmp_path, FITTED, server)
    before = len(posts(server))
    code, events, stderr = codex(home, "Say hello.", timeout=600)
    assert code == 0, stderr
    assert errors_of(events) == []
    kinds = [e["type"] for e in events]
    assert kinds[0] == "thread.started" and kinds[-2:] == ["item.completed", "turn.completed"]
    message = events[-2]["item"]
    assert message["type"] == "agent_message" and message["text"].strip()
    usage = events[-1]["usage"]
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert posts(server)[before:] == ["200"]
    # The next turn hands the whole conversation back (store: false) and completes too.
    code, events, stderr = codex(home, "resume", "--last", "Now say goodbye.", timeout=600)
    assert code == 0, stderr
    assert errors_of(events) == [] and events[-1]["type"] == "turn.completed"
    assert events[-1]["usage"]["input_tokens"] > usage["input_tokens"]  # the first turn is in this prompt
    assert posts(server)[before:] == ["200", "200"]
