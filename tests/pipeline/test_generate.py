"""generate(): engine deltas through the parsers into events, on the scripted engine."""

from __future__ import annotations

from contextlib import aclosing

from vresponses.engines.base import SamplingOptions
from vresponses.engines.fake import FakeEngine
from vresponses.parsers import REASONING_PARSERS, TOOL_PARSERS
from vresponses.parsers.base import ToolSpec
from vresponses.pipeline.events import Event, Finished, ReasoningDelta, TextDelta, ToolCallDelta
from vresponses.pipeline.generate import Plan, generate
from vresponses.pipeline.response import Collector, ResponseObject

ADD = ToolSpec("add", None, {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]})
CALL = '<tool_call>\n{"name": "add", "arguments": {"a": 1}}\n</tool_call>'


def plan(**kw: object) -> Plan:
    defaults: dict[str, object] = {"request_id": "r1", "prompt_token_ids": [1, 2, 3],
                                   "options": SamplingOptions(max_tokens=100)}  # fmt: skip
    return Plan(**{**defaults, **kw})  # type: ignore[arg-type]


async def run(engine: FakeEngine, p: Plan) -> list[Event]:
    return [e async for e in generate(engine, p)]


async def test_text_then_finished_with_usage() -> None:
    engine = FakeEngine()
    engine.enqueue("Hel", "lo", cached_tokens=2)
    events = await run(engine, plan())
    assert events[:-1] == [TextDelta("Hel"), TextDelta("lo")]
    done = events[-1]
    assert isinstance(done, Finished) and done.finish_reason == "stop"
    assert (done.usage.input_tokens, done.usage.cached_tokens, done.usage.output_tokens) == (3, 2, 2)


async def test_reasoning_then_tool_call_streamed_in_pieces() -> None:
    engine = FakeEngine()
    text = "<think>need add</think>" + CALL
    engine.enqueue(*[text[i : i + 4] for i in range(0, len(text), 4)])
    p = plan(tool_parser=TOOL_PARSERS["hermes"]([ADD]), reasoning_parser=REASONING_PARSERS["qwen3"](False))
    events = await run(engine, p)
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == "need add"
    assert not [e for e in events if isinstance(e, TextDelta)]  # no markup leaks into content
    calls = [e for e in events if isinstance(e, ToolCallDelta)]
    assert [(c.index, c.name, c.arguments) for c in calls] == [(0, "add", '{"a": 1}')]
    assert calls[0].call_id.startswith("call_")
    done = events[-1]
    assert isinstance(done, Finished) and done.finish_reason == "tool_calls"
    assert 0 < done.usage.reasoning_tokens < done.usage.output_tokens


async def test_forced_calls_validated_and_repeats_end_the_turn() -> None:
    engine = FakeEngine()
    bad = '<tool_call>\n{"name": "add", "arguments": {"a": "x"}}\n</tool_call>'
    engine.enqueue(bad, "\n", CALL, "\n", CALL, "\n", CALL, "\n", CALL)
    p = plan(tool_parser=TOOL_PARSERS["hermes"]([ADD]), forced={"add": ADD})
    events = await run(engine, p)
    calls = [e for e in events if isinstance(e, ToolCallDelta)]
    assert [(c.index, c.arguments) for c in calls] == [(0, '{"a": 1}')]  # invalid dropped, repeat deduped
    assert "r1" in engine.aborted  # the repeat stopped generation early
    assert isinstance(events[-1], Finished) and events[-1].finish_reason == "tool_calls"


async def test_forced_call_cut_short_is_never_returned() -> None:
    engine = FakeEngine()
    engine.enqueue('<tool_call>\n{"name": "add", "argu', finish_reason="length")
    events = await run(engine, plan(tool_parser=TOOL_PARSERS["hermes"]([ADD]), forced={"add": ADD}))
    assert not [e for e in events if isinstance(e, ToolCallDelta | TextDelta)]
    assert isinstance(events[-1], Finished) and events[-1].finish_reason == "length"


async def test_closing_early_aborts_the_engine_request() -> None:
    engine = FakeEngine()
    engine.enqueue(*"abcdef")
    async with aclosing(generate(engine, plan())) as events:
        async for _ in events:
            break
    assert engine.aborted == ["r1"] and engine.unfinished_requests() == 0


async def test_logprobs_follow_their_content() -> None:
    engine = FakeEngine()
    engine.enqueue("a", "b")
    events = await run(engine, plan(options=SamplingOptions(max_tokens=10, logprobs=1)))
    texts = [e for e in events if isinstance(e, TextDelta)]
    assert [lp.token for e in texts for lp in e.logprobs] == ["a", "b"]


async def test_collector_orders_output_items() -> None:
    response = ResponseObject(id="resp_1", created=0, model="m")
    collector = Collector(response)
    for event in [ReasoningDelta("hm"), TextDelta("hi"), ToolCallDelta(0, "call_1", "add", '{"a"'),
                  ToolCallDelta(0, "call_1", None, ": 1}")]:  # fmt: skip
        collector.add(event)
    result = collector.result()
    assert [type(i).__name__ for i in result.output] == ["Reasoning", "OutputText", "FunctionCall"]
    assert result.output[2].arguments == '{"a": 1}'  # type: ignore[union-attr]
    assert result.status == "incomplete"  # no Finished event arrived
