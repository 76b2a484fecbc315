"""Engine processes run below the server in CPU priority, whichever way vLLM starts them; the server itself does not."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from vresponses.engines import priority

ROOT = Path(__file__).resolve().parents[2]


def niceness_after(nice: int) -> list[int]:
    """The stand-in server's own nice value, then its forked and its spawned child's."""
    env = {k: v for k, v in os.environ.items() if k != priority.ENV}
    out = subprocess.run(
        [sys.executable, "-m", "tests.engines.priority_server", str(nice)],
        cwd=ROOT, env=env, capture_output=True, check=True, timeout=120,
    )  # fmt: skip
    return [int(n) for n in out.stdout.split()]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread nice values are Linux's")
def test_engine_processes_run_at_the_given_nice_below_the_server() -> None:
    base = os.getpriority(os.PRIO_PROCESS, 0)
    assert niceness_after(7) == [base, max(base, 7), max(base, 7)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread nice values are Linux's")
def test_zero_leaves_every_process_as_it_was() -> None:
    base = os.getpriority(os.PRIO_PROCESS, 0)
    assert niceness_after(0) == [base, base, base]


def test_vllm_loads_the_priority_plugin_in_its_engine_processes() -> None:
    plugins = {ep.name: ep.value for ep in entry_points(group="vllm.general_plugins")}
    assert plugins.get("vresponses_priority") == "vresponses.engines.priority:lower"
