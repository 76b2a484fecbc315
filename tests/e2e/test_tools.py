"""Issue 3 through the gradient SDK on the real 135M model: forced calls always validate, agent loop, logprobs."""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import gradient
import jsonschema
import pytest
from gradient import Gradient

from tests.e2e.conftest import MODEL


def fn(name: str, props: dict[str, Any], required: list[str], description: str = "") -> dict[str, Any]:
    schema = {"type": "object", "properties": props, "required": required}
    return {"type": "function", "name": name, "description": description or name, "parameters": schema}


S, INT, N, B = {"type": "string"}, {"type": "integer"}, {"type": "number"}, {"type": "boolean"}
CASES: list[tuple[str, dict[str, Any]]] = [
    ("What's the weather in Paris?", fn("get_weather", {"city": S}, ["city"])),
    ("Weather in Tokyo in fahrenheit", fn("get_weather", {"city": S, "unit": {"enum": ["c", "f"]}}, ["city", "unit"])),
    ("Add 2 and 3", fn("add", {"a": INT, "b": INT}, ["a", "b"])),
    ("Convert 3.5 miles to km", fn("convert", {"value": N, "from": S, "to": S}, ["value", "from", "to"])),
    (
        "Send an email to bob@example.com saying hi",
        fn("send_email", {"to": S, "subject": S, "body": S}, ["to", "body"]),
    ),
    (
        "Book a table for 4 at 7pm",
        fn("book", {"people": {"type": "integer", "minimum": 1, "maximum": 20}, "time": S}, ["people", "time"]),
    ),
    ("Search for red shoes under 50 dollars", fn("search", {"query": S, "max_price": N, "in_stock": B}, ["query"])),
    (
        "Tag this photo with beach, sun and sea",
        fn("tag", {"tags": {"type": "array", "items": S, "minItems": 1}}, ["tags"]),
    ),
    (
        "Create user Ann aged 30 living in Oslo, Norway",
        fn(
            "create_user",
            {
                "name": S,
                "age": INT,
                "address": {"type": "object", "properties": {"city": S, "country": S}, "required": ["city", "country"]},
            },
            ["name", "address"],
        ),
    ),
    (
        "Set the thermostat to 21 degrees in eco mode",
        fn(
            "thermostat",
            {"celsius": N, "mode": {"type": "string", "enum": ["eco", "comfort", "off"]}},
            ["celsius", "mode"],
        ),
    ),
    (
        "Translate 'good morning' to Spanish",
        fn("translate", {"text": S, "target": {"enum": ["es", "fr", "de"]}}, ["text", "target"]),
    ),
    ("Remind me to call mom tomorrow at 9", fn("remind", {"what": S, "when": S, "repeat": B}, ["what", "when"])),
    (
        "Order 2 pizzas, one margherita and one pepperoni",
        fn(
            "order",
            {
                "items": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"name": S, "qty": INT}, "required": ["name", "qty"]},
                }
            },
            ["items"],
        ),
    ),
    (
        "Play some jazz at volume 30",
        fn("play", {"genre": S, "volume": {"type": "integer", "minimum": 0, "maximum": 100}}, ["genre"]),
    ),
    (
        "What's the stock price of ACME?",
        fn("quote", {"ticker": {"type": "string", "pattern": "^[A-Z]{1,5}$"}}, ["ticker"]),
    ),
    (
        "Draw a blue circle of radius 5",
        fn("draw", {"shape": {"enum": ["circle", "square"]}, "color": S, "size": N}, ["shape", "color", "size"]),
    ),
    (
        "Find flights from NYC to LA on May 3",
        fn("flights", {"origin": S, "destination": S, "date": S, "nonstop": B}, ["origin", "destination", "date"]),
    ),
    (
        "Rate the movie Alien 5 stars",
        fn("rate", {"title": S, "stars": {"type": "integer", "enum": [1, 2, 3, 4, 5]}}, ["title", "stars"]),
    ),
    (
        "Schedule a meeting with Ann and Bo about the budget",
        fn(
            "meeting",
            {
                "attendees": {"type": "array", "items": S},
                "topic": S,
                "settings": {"type": "object", "properties": {"video": B, "minutes": INT}},
            },
            ["attendees", "topic"],
        ),
    ),
    ("Turn off the kitchen lights", fn("lights", {"room": S, "on": B}, ["room", "on"])),
]
DISTRACTOR = fn("noop", {"reason": S}, ["reason"], "Do nothing")


def forced(client: Gradient, prompt: str, tool: dict[str, Any], mode: str, stream: bool, parallel: bool) -> list[Any]:
    choice: Any = "required" if mode == "required" else {"type": "function", "function": {"name": tool["name"]}}
    tools = [tool, DISTRACTOR] if mode == "required" else [DISTRACTOR, tool]
    kwargs = {
        "model": MODEL, "input": prompt, "tools": tools, "tool_choice": choice, "temperature": 0,
        "parallel_tool_calls": parallel, "max_output_tokens": 600,
    }  # fmt: skip
    if not stream:
        r = client.responses.create(**kwargs)
        assert r.choices[0].finish_reason == "tool_calls", (prompt, r.model_dump(exclude_none=True))
        calls = [(c.function.name, c.function.arguments) for c in r.choices[0].message.tool_calls]
        items = [(o.name, o.arguments) for o in r.output if o.type == "function_call"]
        assert calls == items and all(o.id == o.call_id for o in r.output if o.type == "function_call")
        assert not r.choices[0].message.content
        return calls
    chunks = list(client.responses.create(**kwargs, stream=True))
    assert not "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].choices[0].finish_reason == "tool_calls", (prompt, chunks[-3:])
    calls: dict[int, list[str]] = {}
    for c in chunks:
        for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            index = tc.index if tc.index is not None else len(calls)
            if tc.function.name:
                calls[index] = [tc.function.name, ""]
            calls[index][1] += tc.function.arguments or ""
    return [tuple(v) for _, v in sorted(calls.items())]


@pytest.mark.parametrize("mode", ["required", "named"])
@pytest.mark.parametrize("stream", [False, True])
def test_forced_calls_always_validate(client: Gradient, mode: str, stream: bool) -> None:
    def one(i: int) -> list[Any]:
        prompt, tool = CASES[i]
        return forced(client, prompt, tool, mode, stream, parallel=i % 2 == 0)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(len(CASES))))
    valid = 0
    for (prompt, tool), calls in zip(CASES, results, strict=True):
        assert calls, prompt
        for name, arguments in calls:
            if mode == "named":
                assert name == tool["name"]
            schema = tool["parameters"] if name == tool["name"] else DISTRACTOR["parameters"]
            jsonschema.validate(json.loads(arguments), schema)
        valid += 1
    assert valid == 20


def test_parallel_false_gives_exactly_one_call(client: Gradient) -> None:
    prompt, tool = CASES[0]
    calls = forced(client, prompt, tool, "required", stream=False, parallel=False)
    assert len(calls) == 1


def test_tool_choice_none_offers_no_tools(client: Gradient) -> None:
    prompt, tool = CASES[0]
    r = client.responses.create(
        model=MODEL, input=prompt, tools=[tool], tool_choice="none", temperature=0, max_output_tokens=30
    )
    assert r.choices[0].finish_reason in ("stop", "length")
    assert not r.choices[0].message.tool_calls and "<tool_call>" not in r.choices[0].message.content
    assert r.tool_choice == "none"


def test_agent_loop(client: Gradient) -> None:
    tool = CASES[2][1]
    history: list[Any] = [{"role": "user", "content": "What is 2 plus 3? Use the add tool."}]
    first = client.responses.create(model=MODEL, input=history, tools=[tool], tool_choice="required", temperature=0)
    call = first.output[0]
    assert call.type == "function_call" and call.name == "add"
    args = json.loads(call.arguments)
    result = args["a"] + args["b"]
    history += [
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": json.dumps({"sum": result})},
    ]
    final = client.responses.create(
        model=MODEL, input=history, tools=[tool], tool_choice="none", temperature=0, max_output_tokens=60
    )
    assert final.choices[0].finish_reason in ("stop", "length")
    assert final.choices[0].message.content.strip()
    assert final.output[-1].type == "text"
    # The same turn in chat shape (assistant tool_calls + tool message) renders and answers as well.
    chat_history = [
        history[0],
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": call.call_id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}]},
        {"role": "tool", "tool_call_id": call.call_id, "content": json.dumps({"sum": result})},
    ]  # fmt: skip
    again = client.responses.create(
        model=MODEL, input=chat_history, tools=[tool], tool_choice="none", temperature=0, max_output_tokens=60
    )
    assert again.choices[0].message.content == final.choices[0].message.content


def test_unmatched_call_output_is_400(client: Gradient) -> None:
    with pytest.raises(gradient.BadRequestError) as info:
        client.responses.create(model=MODEL, input=[{"type": "function_call_output", "call_id": "x", "output": "1"}])
    assert "call_id" in str(info.value)


def test_logprobs_present_exactly_when_asked(client: Gradient) -> None:
    plain = client.responses.create(model=MODEL, input="Say hello.", temperature=0, max_output_tokens=12)
    assert plain.choices[0].logprobs is None
    r = client.responses.create(
        model=MODEL, input="Say hello.", temperature=0, max_output_tokens=12, extra_body={"top_logprobs": 3}
    )
    entries = r.choices[0].logprobs.content
    assert "".join(e.token for e in entries) == r.choices[0].message.content
    for e in entries:
        assert len(e.top_logprobs) == 3
        assert e.logprob <= 0 and bytes(e.bytes) == e.token.encode()
        # Greedy: the chosen token is the most likely one.
        assert math.isclose(e.logprob, max(t.logprob for t in e.top_logprobs), abs_tol=1e-4)
    stream = client.responses.create(
        model=MODEL,
        input="Say hello.",
        temperature=0,
        max_output_tokens=12,
        stream=True,
        extra_body={"top_logprobs": 3},
    )
    streamed = [e for c in stream if c.choices and c.choices[0].logprobs for e in c.choices[0].logprobs.content]
    assert [e.token for e in streamed] == [e.token for e in entries]
