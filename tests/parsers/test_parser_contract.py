"""The contract every parser shares: registration, split invariance, no lost text, CallFormat round trips."""

from __future__ import annotations

import json
import random
import zlib

import pytest
from splitcheck import call, parse_all_ways

from vresponses.parsers import REASONING_PARSERS, TOOL_PARSERS, lookup
from vresponses.parsers.base import CallFormat, ToolParser, ToolSpec, UnknownParser

TOOLS = [ToolSpec("get_weather", parameters={"type": "object", "properties": {"days": {"type": "integer"}}})]


def test_registered_names_match_vllm_flags() -> None:
    assert set(TOOL_PARSERS) == {"hermes", "llama3_json", "mistral", "qwen3_coder", "deepseek_v3", "pythonic", "json"}
    assert set(REASONING_PARSERS) == {"deepseek_r1", "qwen3"}
    assert lookup(TOOL_PARSERS, "hermes", "tool-call").name == "hermes"
    with pytest.raises(UnknownParser, match="known: deepseek_v3, hermes"):
        lookup(TOOL_PARSERS, "nope", "tool-call")


def test_call_formats_are_as_specified() -> None:
    assert TOOL_PARSERS["hermes"].call_format == CallFormat("", "<tool_call>\n", "\n</tool_call>", "\n", "")
    assert TOOL_PARSERS["llama3_json"].call_format == CallFormat("", "", "", "; ", "", "name", "parameters")
    assert TOOL_PARSERS["mistral"].call_format == CallFormat("[TOOL_CALLS][", "", "", ", ", "]")
    for name in ("deepseek_v3", "qwen3_coder", "pythonic"):
        assert TOOL_PARSERS[name].call_format is None


ROUND_TRIP_CALLS = [
    ("get_weather", {"city": "São Paulo", "days": 3}),
    ("search", {"query": '</tool_call> [TOOL_CALLS] ; {"x": [1]}', "nested": {"a": [None, True, 1.5]}}),
    ("noop", {}),
]


@pytest.mark.parametrize("name", sorted(n for n, cls in TOOL_PARSERS.items() if cls.call_format is not None))
@pytest.mark.parametrize("count", [1, 2, 3])
def test_call_format_output_parses_back(name: str, count: int) -> None:
    cls = TOOL_PARSERS[name]
    fmt = cls.call_format
    assert fmt is not None
    calls = ROUND_TRIP_CALLS[:count]
    body = fmt.separator.join(fmt.begin + json.dumps({fmt.name_key: n, fmt.args_key: a}) + fmt.end for n, a in calls)
    output = fmt.prefix + body + fmt.suffix
    got = parse_all_ways(lambda: cls(TOOLS), output)
    assert got.events == tuple(call(i, n, a) for i, (n, a) in enumerate(calls))


# Fragments each family's fuzzing draws from: its own markup, broken markup, and ordinary text.
COMMON = [" ", "\n", "hello", "{", "}", "[", "]", '"', "\\", ";", ",", "<", ">", "(", ")", "'", "=", "é", "日本"]
FRAGMENTS = {
    "hermes": [
        "<tool_call>",
        "</tool_call>",
        "<tool_",
        "</tool",
        '{"name": "f", "arguments": {"a": 1}}',
        '<tool_call>\n{"name": "f", "arguments": {"q": "</tool_call>"}}\n</tool_call>',
    ],
    "qwen3_coder": [
        "<tool_call>",
        "</tool_call>",
        "<function=get_weather>",
        "</function>",
        "<parameter=days>",
        "</parameter>",
        "<parameter=",
        "3",
        "<tool_call>\n<function=get_weather>\n<parameter=days>\n3\n</parameter>\n</function>\n</tool_call>",
    ],
    "llama3_json": ["<|python_tag|>", "<|python", '{"name": "f", "parameters": {"a": [1]}}', "; ", '"name"'],
    "mistral": [
        "[TOOL_CALLS]",
        "[ARGS]",
        "[CALL_ID]",
        "[TOOL_",
        "f",
        "abc123XYZ",
        '{"a": "}"}',
        "[ARG",
        '[TOOL_CALLS]f[ARGS]{"a": 1}',
        '[TOOL_CALLS][{"name": "f", "arguments": {}}]',
    ],
    "deepseek_v3": [
        "<｜tool▁calls▁begin｜>",
        "<｜tool▁calls▁end｜>",
        "<｜tool▁call▁begin｜>",
        "<｜tool▁call▁end｜>",
        "<｜tool▁sep｜>",
        "function",
        "get_weather\n```json\n{}\n```",
        "<｜tool▁",
        "<｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n{}\n```<｜tool▁call▁end｜>",
        "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n{}\n```<｜tool▁call▁end｜>",
    ],
    "pythonic": [
        "[",
        "f(",
        "a=1",
        "b='x'",
        ")",
        "]",
        "<|python_start|>",
        "<|python_end|>",
        "g.h(",
        ", ",
        "[f(a=1), g(b='x')]",
    ],
    "json": ['{"name": "f", "arguments": {}}', '{"name": ', '"arguments": ', "[", "]", ", "],
    "deepseek_r1": ["<think>", "</think>", "<thi", "</th", "\n\n"],
    "qwen3": ["<think>", "</think>", "<thi", "</th", "\n\n"],
}


def fuzz_documents(family: str, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    vocabulary = FRAGMENTS[family] * 3 + COMMON
    docs = []
    for _ in range(count):
        pieces = [rng.choice(vocabulary) for _ in range(rng.randint(1, 24))]
        # Start with markup often: several formats only recognise calls at the start of output.
        if rng.random() < 0.5:
            pieces.insert(0, rng.choice(FRAGMENTS[family]))
        docs.append("".join(pieces))
    return docs


@pytest.mark.parametrize("family", sorted(TOOL_PARSERS))
def test_tool_parsers_agree_across_splits_and_never_lose_text(family: str) -> None:
    cls = TOOL_PARSERS[family]

    def make() -> ToolParser:
        return cls(TOOLS)

    calls_seen = 0
    for i, doc in enumerate(fuzz_documents(family, 150, seed=zlib.crc32(family.encode()))):
        got = parse_all_ways(make, doc, seed=i)
        calls_seen += len(got.calls)
        if not got.calls:
            # Whitespace is only ever dropped next to a call, so without calls the output is the input.
            assert got.text == doc, doc
    assert calls_seen > 0, "the fuzz corpus should exercise successful calls too"


@pytest.mark.parametrize("family", sorted(REASONING_PARSERS))
@pytest.mark.parametrize("opened", [False, True])
def test_reasoning_parsers_agree_across_splits(family: str, opened: bool) -> None:
    cls = REASONING_PARSERS[family]
    for i, doc in enumerate(fuzz_documents(family, 150, seed=7)):
        got = parse_all_ways(lambda: cls(opened), doc, seed=i)
        # Nothing but tags and whitespace next to them disappears.
        kept = "".join(ch for ch in got.reasoning + got.text if not ch.isspace())
        original = "".join(ch for ch in doc if not ch.isspace())
        assert len(kept) >= len(original) - len("<think></think>") * doc.count("think>"), doc


def test_feeding_empty_deltas_is_harmless() -> None:
    for cls in TOOL_PARSERS.values():
        parser = cls(TOOLS)
        assert parser.feed("") == []
        assert parser.finish() == []
