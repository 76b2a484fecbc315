"""Rendering: items to chat messages, tool fallbacks, and what the template probes find."""

from __future__ import annotations

import time

import pytest

from vresponses.engines.fake import FakeTokenizer
from vresponses.errors import InvalidRequest
from vresponses.parsers import TOOL_PARSERS
from vresponses.parsers.base import ToolSpec
from vresponses.pipeline.items import FunctionCall, FunctionCallOutput, Message, OutputText, Reasoning, ToolCall
from vresponses.pipeline.render import Renderer
from vresponses.pipeline.template import CHATML, ChatTemplate

SMOL = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are SmolLM<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# A Qwen-like template that renders tools, tool calls, tool results and reasoning itself.
TOOLISH = (
    "{% if tools %}<tools>{% for t in tools %}{{ t.function.name }};{% endfor %}</tools>\n{% endif %}"
    "{% for m in messages %}<|{{ m.role }}|>"
    "{% if m.reasoning_content %}<think>{{ m.reasoning_content }}</think>{% endif %}{{ m.content }}"
    "{% for c in m.tool_calls or [] %}<call>{{ c.function.name }}{{ c.function.arguments | tojson }}</call>{% endfor %}"
    "{% if m.role == 'tool' %}[{{ m.tool_call_id }}]{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
TOOL = ToolSpec("get_weather", "Weather", {"type": "object", "properties": {"city": {"type": "string"}}})
HERMES = TOOL_PARSERS["hermes"].call_format


def renderer(source: str) -> Renderer:
    return Renderer(ChatTemplate(source, None, "<|im_end|>"), FakeTokenizer(), HERMES)


def test_probes() -> None:
    smol = ChatTemplate(SMOL, None, None)
    assert not (smol.supports_tools or smol.supports_tool_calls or smol.supports_reasoning)
    rich = ChatTemplate(TOOLISH, None, None)
    assert rich.supports_tools and rich.supports_tool_calls and rich.supports_reasoning


def test_instructions_first_and_developer_is_system() -> None:
    items = [Message("developer", "dev rules"), Message("user", "hi")]
    messages = renderer(SMOL).messages(items, "be brief")
    assert [m["role"] for m in messages] == ["system", "system", "user"]
    assert messages[0]["content"] == "be brief"


def test_assistant_items_merge_into_one_message() -> None:
    items = [
        Message("user", "add"),
        Reasoning("rs_1", "thinking"),
        OutputText("sure"),
        FunctionCall(call_id="c1", name="add", arguments='{"a": 1}'),
        FunctionCallOutput(call_id="c1", output="2"),
    ]
    messages = renderer(TOOLISH).messages(items, None)
    assert messages[1] == {
        "role": "assistant",
        "content": "sure",
        "reasoning_content": "thinking",
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "add", "arguments": {"a": 1}}}],
    }
    assert messages[2] == {"role": "tool", "tool_call_id": "c1", "name": "add", "content": "2"}


def test_chat_shaped_tool_round_trip_matches_items() -> None:
    as_items = [Message("user", "q"), FunctionCall(call_id="c1", name="add", arguments="{}"),
                FunctionCallOutput(call_id="c1", output="5")]  # fmt: skip
    as_chat = [Message("user", "q"), Message("assistant", "", tool_calls=(ToolCall("c1", "add", "{}"),)),
               Message("tool", "5", tool_call_id="c1")]  # fmt: skip
    r = renderer(TOOLISH)
    assert r.render(as_items, None, [TOOL]).text == r.render(as_chat, None, [TOOL]).text


def test_unmatched_tool_output_is_invalid() -> None:
    with pytest.raises(InvalidRequest) as info:
        renderer(SMOL).render([FunctionCallOutput(call_id="nope", output="1")], None, [])
    assert "nope" in info.value.message


def test_template_ignoring_tools_gets_the_fallback_block() -> None:
    prompt = renderer(SMOL).render([Message("user", "weather?")], None, [TOOL]).text
    assert prompt.startswith("<|im_start|>system\nYou may call one or more functions")
    assert '"name": "get_weather"' in prompt and "<tool_call>\n" in prompt
    with_instructions = renderer(SMOL).render([Message("user", "weather?")], "be kind", [TOOL]).text
    assert with_instructions.startswith("<|im_start|>system\nbe kind\n\nYou may call")


def test_template_with_tools_renders_them_itself() -> None:
    prompt = renderer(TOOLISH).render([Message("user", "weather?")], None, [TOOL]).text
    assert prompt.startswith("<tools>get_weather;</tools>") and "You may call" not in prompt


def test_calls_and_results_become_text_where_the_template_drops_them() -> None:
    items = [Message("user", "q"), FunctionCall(call_id="c1", name="add", arguments='{"a": 1}'),
             FunctionCallOutput(call_id="c1", output="5")]  # fmt: skip
    prompt = renderer(SMOL).render(items, None, []).text
    assert (
        '<|im_start|>assistant\n<tool_call>\n{"name": "add", "arguments": {"a": 1}}\n</tool_call><|im_end|>' in prompt
    )
    assert "<|im_start|>user\n<tool_response>\n5\n</tool_response><|im_end|>" in prompt


def test_reasoning_dropped_unless_template_renders_it() -> None:
    items = [Message("user", "q"), Reasoning("rs", "secret thoughts"), OutputText("a"), Message("user", "again")]
    assert "secret thoughts" not in renderer(SMOL).render(items, None, []).text
    assert "<think>secret thoughts</think>a" in renderer(TOOLISH).render(items, None, []).text


def test_prompt_opening_think_is_detected() -> None:
    opens = renderer(CHATML + "<think>\n").render([Message("user", "q")], None, [])
    assert opens.opens_reasoning
    assert not renderer(CHATML).render([Message("user", "q")], None, []).opens_reasoning


def test_template_errors_are_invalid_requests() -> None:
    failing = "{{ raise_exception('roles must alternate') }}"
    with pytest.raises(InvalidRequest) as info:
        renderer(failing).render([Message("user", "q")], None, [])
    assert "alternate" in info.value.message


def test_sandbox_blocks_attribute_escape() -> None:
    evil = "{{ messages.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(InvalidRequest):
        renderer(evil).render([Message("user", "q")], None, [])


def test_many_consecutive_assistant_items_merge_in_linear_time() -> None:
    # Joining 60k pieces by repeated += copied the growing message each time (~10^11 bytes); a join is instant.
    items = [Message(role="assistant", content="x" * 100) for _ in range(60_000)]
    items += [Reasoning(id="r", text="y" * 100) for _ in range(20_000)]
    started = time.perf_counter()
    messages = renderer(SMOL).messages(items, None)
    assert time.perf_counter() - started < 3.0
    assert len(messages) == 2 and len(messages[0]["content"]) == 6_000_000
    assert len(messages[1]["reasoning_content"]) == 2_000_000
