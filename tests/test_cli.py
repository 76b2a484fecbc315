"""`vresponses serve` options reach the settings: keys from flags and the environment together, blank refused; the
engine's CPU priority."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from vresponses import cli


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[cli.Settings]:
    runs: list[cli.Settings] = []
    monkeypatch.setattr(cli, "_cuda", lambda: False)
    monkeypatch.setattr(cli, "run", lambda settings, *a, **k: runs.append(settings))
    return runs


def test_keys_from_the_flag_and_the_environment_are_both_accepted(
    started: list[cli.Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    # make run passes its key in the environment; ARGS may add more with --api-key.
    monkeypatch.setenv("VRESPONSES_API_KEY", "from-env another-env")
    result = CliRunner().invoke(cli.app, ["serve", "--api-key", "from-flag", "--kv-cache-memory", "1GiB"])
    assert result.exit_code == 0, result.output
    assert set(started[0].api_keys) == {"from-flag", "from-env", "another-env"}


def test_a_blank_key_in_the_environment_refuses_to_start(
    started: list[cli.Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VRESPONSES_API_KEY", "  ")
    result = CliRunner().invoke(cli.app, ["serve", "--kv-cache-memory", "1GiB"])
    assert result.exit_code == 2 and "empty" in result.output and not started


def test_the_engine_runs_below_the_server_on_cpu_unless_told_otherwise(
    started: list[cli.Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    for args in ([], ["--engine-nice", "3"]):
        result = CliRunner().invoke(cli.app, ["serve", "--kv-cache-memory", "1GiB", *args])
        assert result.exit_code == 0, result.output
    monkeypatch.setattr(cli, "_cuda", lambda: True)
    result = CliRunner().invoke(cli.app, ["serve", "--kv-cache-memory", "1GiB"])
    assert result.exit_code == 0, result.output
    assert [s.engine.nice for s in started] == [10, 3, 0]  # on a GPU vLLM's processes keep their priority
