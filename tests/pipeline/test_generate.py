"""generate(): engine deltas through the parsers into item events, on the scripted engine."""

from __future__ import annotations

from contextlib import aclosing

from vresponses.engines.base import SamplingOptions
from vresponses.engines.fake import FakeEngine
from vresponses.parsers import REASONING_PARSERS, TOOL_PARSERS
from vresponses.parsers.base import ToolSpec
from vresponses.pipeline.events import ArgumentsDelta, ItemDone, ItemStarted, ReasoningDelta, TextDelta
from vresponses.pipeline.generate import Plan, Stopped, generate
from vresponses.pipeline.items import FunctionCall, Message, Reasoning
from vresponses.pipeline.output import OutputBuilder

ADD = ToolSpec("add", None, {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]})
CALL = '<tool_call>\n{"name": "add", "arguments": {"a": 1}}\n</tool_call>'


def plan(**kw: object) -> Plan:
    defaults: dict[str, object] = {
        "request_id": "r1",
        "prompt_token_ids": [1, 2, 3],
        "options": SamplingOptions(max_tokens=100),
    }
    return Plan(**{**defaults, **kw})  # type: ignore[arg-type]


async def run(engine: FakeEngine, p: Plan, output: OutputBuilder | None = None) -> list[object]:
    return [e async for e in generate(engine, p, output or OutputBuilder())]


async def test_text_is_one_message_item_then_stopped_with_usage() -> None:
    engine = FakeEngine()
    engine.enqueue("Hel", "lo", cached_tokens=2)
    events = await run(engine, plan())
    started, d1, d2, done, stopped = events
    assert isinstance(started, ItemStarted) and started.kind == "message" and started.output_index == 0
    assert started.item_id.startswith("msg_")
    assert [d1, d2] == [TextDelta(started.item_id, 0, "Hel"), TextDelta(started.item_id, 0, "lo")]
    assert isinstance(done, ItemDone) and done.item == Message(
        "assistant", "Hello", id=started.item_id, status="completed"
    )
    assert isinstance(stopped, Stopped) and stopped.finish_reason == "stop"
    assert (stopped.usage.input_tokens, stopped.usage.cached_tokens, stopped.usage.output_tokens) == (3, 2, 2)


async def test_reasoning_then_tool_call_streamed_in_pieces() -> None:
    engine = FakeEngine()
    text = "<think>need add</think>" + CALL
    engine.enqueue(*[text[i : i + 4] for i in range(0, len(text), 4)])
    p = plan(tool_parser=TOOL_PARSERS["hermes"]([ADD]), reasoning_parser=REASONING_PARSERS["qwen3"](False))
    events = await run(engine, p)
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == "need add"
    assert not [e for e in events if isinstance(e, TextDelta)]  # no markup leaks into content
    starts = [e for e in events if isinstance(e, ItemStarted)]
    assert [(s.kind, s.output_index, s.name) for s in starts] == [("reasoning", 0, None), ("function_call", 1, "add")]
    assert starts[1].call_id and starts[1].call_id.startswith("call_")
    assert "".join(e.text for e in events if isinstance(e, ArgumentsDelta)) == '{"a": 1}'
    done = [e.item for e in events if isinstance(e, ItemDone)]
    assert isinstance(done[0], Reasoning) and done[0].text == "need add"
    assert done[1] == FunctionCall(starts[1].call_id, "add", '{"a": 1}', id=starts[1].item_id, status="completed")
    stopped = events[-1]
    assert isinstance(stopped, Stopped) and stopped.finish_reason == "tool_calls"
    assert 0 < stopped.usage.reasoning_tokens < stopped.usage.output_tokens


async def test_text_call_text_are_three_items_in_model_order() -> None:
    engine = FakeEngine()
    engine.enqueue("Let me add. ", CALL, " Done.")
    output = OutputBuilder()
    events = await run(engine, plan(tool_parser=TOOL_PARSERS["hermes"]([ADD])), output)
    starts = [(e.kind, e.output_index) for e in events if isinstance(e, ItemStarted)]
    assert starts == [("message", 0), ("function_call", 1), ("message", 2)]
    assert [type(i).__name__ for i in output.items] == ["Message", "FunctionCall", "Message"]
    ids = [e.item_id for e in events if isinstance(e, ItemStarted)]
    assert len(set(ids)) == 3  # each item has its own id


async def test_one_call_when_parallel_calls_are_off() -> None:
    engine = FakeEngine()
    second = CALL.replace('"a": 1', '"a": 2')
    engine.enqueue(CALL, "\n", second, "\n", CALL)
    p = plan(tool_parser=TOOL_PARSERS["hermes"]([ADD]), parallel_tool_calls=False)
    events = await run(engine, p)
    calls = [e.item for e in events if isinstance(e, ItemDone) and isinstance(e.item, FunctionCall)]
    assert [c.arguments for c in calls] == ['{"a": 1}']
    assert "r1" in engine.aborted  # generation stopped at the second call
    assert isinstance(events[-1], Stopped) and events[-1].finish_reason == "tool_calls"


async def test_forced_calls_validated_and_repeats_end_the_turn() -> None:
    engine = FakeEngine()
    bad = '<tool_call>\n{"name": "add", "arguments": {"a": "x"}}\n</tool_call>'
    engine.enqueue(bad, "\n", CALL, "\n", CALL, "\n", CALL, "\n", CALL)
    p = plan(tool_parser=TOOL_PARSERS["hermes"]([ADD]), forced={"add": ADD})
    events = await run(engine, p)
    calls = [e.item for e in events if isinstance(e, ItemDone)]
    assert [c.arguments for c in calls if isinstance(c, FunctionCall)] == ['{"a": 1}']  # invalid dropped, deduped
    assert "r1" in engine.aborted  # the repeat stopped generation early
    assert isinstance(events[-1], Stopped) and events[-1].finish_reason == "tool_calls"


async def test_forced_call_cut_short_is_never_returned() -> None:
    engine = FakeEngine()
    engine.enqueue('<tool_call>\n{"name": "add", "argu', finish_reason="length")
    events = await run(engine, plan(tool_parser=TOOL_PARSERS["hermes"]([ADD]), forced={"add": ADD}))
    assert not [e for e in events if isinstance(e, ItemStarted | TextDelta)]
    assert isinstance(events[-1], Stopped) and events[-1].finish_reason == "length"


async def test_closing_early_aborts_and_the_snapshot_keeps_the_partial_item() -> None:
    engine = FakeEngine()
    engine.enqueue(*"abcdef")
    output = OutputBuilder()
    async with aclosing(generate(engine, plan(), output)) as events:
        async for event in events:
            if isinstance(event, TextDelta) and event.text == "b":
                break
    assert engine.aborted == ["r1"] and engine.unfinished_requests() == 0
    [partial] = output.snapshot()
    assert isinstance(partial, Message) and partial.content == "ab" and partial.status == "incomplete"


async def test_logprobs_follow_their_content_and_stay_on_the_message() -> None:
    engine = FakeEngine()
    engine.enqueue("a", "b")
    output = OutputBuilder(with_logprobs=True)
    events = await run(engine, plan(options=SamplingOptions(max_tokens=10, logprobs=1)), output)
    texts = [e for e in events if isinstance(e, TextDelta)]
    assert [lp.token for e in texts for lp in e.logprobs] == ["a", "b"]
    [message] = output.items
    assert isinstance(message, Message) and [lp.token for lp in message.logprobs or ()] == ["a", "b"]


async def test_length_leaves_the_last_item_incomplete() -> None:
    engine = FakeEngine()
    engine.enqueue("a", "b", "c")
    output = OutputBuilder()
    events = await run(engine, plan(options=SamplingOptions(max_tokens=2)), output)
    assert isinstance(events[-1], Stopped) and events[-1].finish_reason == "length"
    assert isinstance(output.items[0], Message) and output.items[0].status == "incomplete"


async def test_server_tool_calls_are_collected_not_emitted() -> None:
    engine = FakeEngine()
    search = '<tool_call>\n{"name": "web_search", "arguments": {"query": "x"}}\n</tool_call>'
    engine.enqueue("Let me look. ", search, "\n", CALL)
    web = ToolSpec("web_search", None, {"type": "object", "properties": {"query": {"type": "string"}}})
    p = plan(tool_parser=TOOL_PARSERS["hermes"]([ADD, web]), server_tools=frozenset({"web_search"}))
    output = OutputBuilder()
    events = await run(engine, p, output)
    assert [s.name for s in events if isinstance(s, ItemStarted)] == [None, "add"]  # the message, then add only
    stopped = events[-1]
    assert isinstance(stopped, Stopped) and stopped.finish_reason == "tool_calls"
    assert stopped.server_calls == (("web_search", '{"query": "x"}'),)
    assert [type(i) for i in output.items] == [Message, FunctionCall]
