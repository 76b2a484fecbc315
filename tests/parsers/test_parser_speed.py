"""Adversarial outputs parse in linear time: a budget for whole text and a growth check for streaming.

The budgets here are looser than bench/parsers_bench.py's 50 ms so that a busy test machine does not fail
them, and they count this process's CPU time rather than wall time for the same reason; what they catch
is a quadratic blow-up, which costs seconds, not milliseconds."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from vresponses.parsers import REASONING_PARSERS, TOOL_PARSERS


def _bench() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "parsers_bench.py"
    spec = importlib.util.spec_from_file_location("parsers_bench", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("parsers_bench", module)
    spec.loader.exec_module(module)
    return module


bench = _bench()
NAMES = sorted([*TOOL_PARSERS, *REASONING_PARSERS])


@pytest.mark.parametrize("name", NAMES)
def test_whole_adversarial_output_is_fast(name: str) -> None:
    make = bench.factories()[name]
    slow = {}
    for case, text in bench.inputs(name).items():
        ms = bench.best(make, text, 0, 3, time.process_time)
        if ms > 3 * bench.BUDGET_MS:
            slow[case] = round(ms, 1)
    assert not slow, f"{name} over {3 * bench.BUDGET_MS:.0f} ms on ~100 KB: {slow}"


@pytest.mark.parametrize("name", NAMES)
def test_streaming_cost_grows_linearly(name: str) -> None:
    make = bench.factories()[name]
    big, small = bench.inputs(name, 100_000), bench.inputs(name, 25_000)
    opener = bench.MARKERS[name][0][:12]
    for case in ("open_braces", "unterminated_string", "foreign_partials", f"{opener}+bracket_pairs", "partial_0"):
        ratio = bench.best(make, big[case], 7, 3, time.process_time) / bench.best(
            make, small[case], 7, 3, time.process_time
        )
        # 4x the input should cost about 4x; quadratic work would cost 16x.
        assert ratio < 8, f"{name}/{case}: 4x the input cost {ratio:.1f}x"
