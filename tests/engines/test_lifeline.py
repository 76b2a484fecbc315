"""Engine processes die with the server, whichever way vLLM starts them (fork or spawn), even on SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def kill_server(*args: str) -> list[int]:
    """Start the stand-in server, SIGKILL it once its children run, and return the children's pids."""
    env = {k: v for k, v in os.environ.items() if k != "VRESPONSES_LIFELINE_ROOT"}
    with subprocess.Popen(
        [sys.executable, "-m", "tests.engines.lifeline_server", *args], cwd=ROOT, stdout=subprocess.PIPE, env=env
    ) as proc:
        assert proc.stdout is not None
        children = [int(p) for p in proc.stdout.readline().split()]
        assert len(children) == 3 and all(alive(p) for p in children)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    return children


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_children_die_with_a_sigkilled_server() -> None:
    children = kill_server("--armed")
    deadline = time.monotonic() + 10
    while any(alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in children if alive(p)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_without_install_nothing_is_armed() -> None:
    # The plugin is loaded by any vLLM run from this environment: it must do nothing outside our server.
    children = kill_server()
    time.sleep(0.5)  # the kernel signals at once when armed: half a second is ample to see that it did not
    try:
        assert all(alive(p) for p in children)
    finally:
        for pid in children:
            os.kill(pid, signal.SIGKILL)


def test_vllm_loads_the_lifeline_in_its_engine_processes() -> None:
    plugins = {ep.name: ep.value for ep in entry_points(group="vllm.general_plugins")}
    assert plugins.get("vresponses_lifeline") == "vresponses.engines.lifeline:arm"
