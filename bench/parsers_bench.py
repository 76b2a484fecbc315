"""Times every registered parser on ~100 KB adversarial outputs, whole and in 1- and 7-char deltas, and checks
the 50 ms budget for whole-text parsing and linear growth for streaming (100 KB costing about 4x 25 KB).

Run: python bench/parsers_bench.py
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from vresponses.parsers import REASONING_PARSERS, TOOL_PARSERS
from vresponses.parsers.base import ReasoningParser, ToolParser, ToolSpec

SIZE = 100_000
BUDGET_MS = 50.0
MODES = {"whole": 0, "delta7": 7, "delta1": 1}

# Each family's own markup, so every parser meets prefixes of its own markers, not just foreign ones.
MARKERS = {
    "hermes": ["<tool_call>", "</tool_call>"],
    "qwen3_coder": ["<tool_call>", "<function=f>", "<parameter=a>", "</parameter>", "</tool_call>"],
    "llama3_json": ["<|python_tag|>", '{"name": "f", "parameters": '],
    "mistral": ["[TOOL_CALLS]", "[ARGS]", "[CALL_ID]", "[TOOL_CALLS]f[ARGS]"],
    "deepseek_v3": ["<｜tool▁calls▁begin｜>", "<｜tool▁call▁begin｜>", "<｜tool▁sep｜>", "<｜tool▁call▁end｜>"],
    "pythonic": ["<|python_start|>", "[f(", "[f(a=", "<|python_end|>"],
    "json": ['{"name": "f", "arguments": ', "["],
    "deepseek_r1": ["<think>", "</think>"],
    "qwen3": ["<think>", "</think>"],
}

# One well-formed call per family, repeated to fill the size: the heavy but honest case.
VALID = {
    "hermes": '<tool_call>\n{"name": "f", "arguments": {"a": 1, "s": "x}"}}\n</tool_call>\n',
    "qwen3_coder": "<tool_call>\n<function=f>\n<parameter=a>\n1\n</parameter>\n</function>\n</tool_call>\n",
    "llama3_json": '{"name": "f", "parameters": {"a": 1, "s": "x}"}}; ',
    "mistral": '[TOOL_CALLS]f[ARGS]{"a": 1, "s": "x}"}',
    "deepseek_v3": '<｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n{"a": 1}\n```<｜tool▁call▁end｜>',
    "pythonic": "get_weather(city='Paris (FR)', days=3), ",
    "json": '{"name": "f", "arguments": {"a": 1}}, ',
    "deepseek_r1": "thinking about it. ",
    "qwen3": "thinking about it. ",
}
WRAP = {
    "deepseek_v3": ("<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"),
    "pythonic": ("[", "g()]"),
    "json": ("[", '{"name": "g"}]'),
    "deepseek_r1": ("<think>", "</think>done"),
    "qwen3": ("<think>", "</think>done"),
}


def fill(unit: str, size: int = SIZE) -> str:
    return unit * (size // len(unit) + 1)


def inputs(name: str, size: int = SIZE) -> dict[str, str]:
    """Adversarial outputs of about `size` characters for one parser."""
    cases = {
        "open_braces": fill("{", size),
        "open_brackets": fill("[", size),
        "unterminated_string": '{"name": "' + fill("x", size),
        "quotes": fill('"', size),
        "backslashes": '{"a": "' + fill("\\", size),
        "whitespace": fill(" \n", size),
        "foreign_partials": fill("<tool_call<|python_t[TOOL_CALL<think", size),
        "json_in_strings": '{"a": "' + fill('{[\\"<tool_call>', size),
        "bracket_pairs": "[" + fill("[]", size),
        "alternating_keys": fill('{"a":', size),
        "nested_groups": "{" + fill('{"a":[1,{"b":"}"}]},', size),
    }
    # The same shapes right after the family's own opening markup, where its scanners see them.
    opener = MARKERS[name][0]
    cases.update({f"{opener[:12]}+{case}": opener + text for case, text in list(cases.items())})
    for i, marker in enumerate(MARKERS[name]):
        if len(marker) > 1:
            cases[f"partial_{i}"] = fill(marker[:-1], size)
        cases[f"repeat_{i}"] = fill(marker, size)
        cases[f"then_brace_{i}"] = marker + fill("{", size)
    head, tail = WRAP.get(name, ("", ""))
    cases["valid_calls"] = head + fill(VALID[name], size) + tail
    return cases


Factory = Callable[[], ToolParser | ReasoningParser]


def factories() -> dict[str, Factory]:
    tools = [ToolSpec("f", parameters={"type": "object", "properties": {"a": {"type": "integer"}}})]
    made: dict[str, Factory] = {}
    for name, tool_cls in TOOL_PARSERS.items():
        made[name] = lambda cls=tool_cls: cls(tools)
    for name, reasoning_cls in REASONING_PARSERS.items():
        made[name] = lambda cls=reasoning_cls: cls(False)
    return made


def run(make: Factory, text: str, step: int, clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds to parse text fed in `step`-char deltas (0: whole)."""
    parser = make()
    start = clock()
    if step == 0:
        parser.feed(text)
    else:
        for i in range(0, len(text), step):
            parser.feed(text[i : i + step])
    parser.finish()
    return clock() - start


def best(make: Factory, text: str, step: int, repeat: int, clock: Callable[[], float] = time.perf_counter) -> float:
    """Best of `repeat` runs, in milliseconds: the least disturbed by other load on the machine."""
    return min(run(make, text, step, clock) for _ in range(repeat)) * 1000


def main() -> int:
    rows = []
    ok = True
    for name, make in sorted(factories().items()):
        cases = inputs(name)
        valid = cases.pop("valid_calls")
        quarters = inputs(name, SIZE // 4)
        row = [name]
        timed = [(best(make, text, 0, 5), case) for case, text in cases.items()]
        ms, case = max(timed)
        ok &= ms < BUDGET_MS
        row.append(f"{ms:6.1f} {'ok' if ms < BUDGET_MS else 'SLOW'} ({case})")
        ms = best(make, valid, 0, 5)
        ok &= ms < BUDGET_MS
        row.append(f"{ms:6.1f} {'ok' if ms < BUDGET_MS else 'SLOW'}")
        for step in (7, 1):
            repeat = 3 if step == 7 else 1
            timed = [(best(make, text, step, repeat), case) for case, text in cases.items()]
            ms, case = max(timed)
            # Linear means 4x the input costs about 4x the time (quadratic would be 16x).
            ratio = best(make, cases[case], step, 3) / best(make, quarters[case], step, 3)
            linear = ratio < 6.0
            ok &= linear
            row.append(f"{ms:7.1f} x{ratio:.1f}{'' if linear else ' NONLINEAR'}")
        rows.append(row)
    header = [
        "parser",
        "whole adversarial ms (worst case)",
        "whole valid ms",
        "7-char deltas ms (x = 100K/25K)",
        "1-char deltas ms (x = 100K/25K)",
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    verdict = "all whole-text parses under 50 ms and streaming linear" if ok else "SOME PARSERS MISSED THE BUDGET"
    print(f"{verdict} (input ~{SIZE // 1000} KB; the budget is {BUDGET_MS:.0f} ms)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
