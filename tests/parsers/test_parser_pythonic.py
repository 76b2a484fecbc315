"""pythonic: Llama 3.2/4 Python-list calls, parsed with ast and never evaluated."""

from __future__ import annotations

from splitcheck import call, parse_all_ways, text

from vresponses.parsers.calls import Call
from vresponses.parsers.pythonic import PythonicToolParser, _ast_calls, _fast_calls, parse_calls


def make() -> PythonicToolParser:
    return PythonicToolParser([])


def test_llama32_zero_shot_call() -> None:
    # Meta's Llama 3.2 prompt-format guide, zero-shot function calling.
    got = parse_all_ways(make, "[get_user_info(user_id=7890, special='black')]")
    assert got.events == (call(0, "get_user_info", {"user_id": 7890, "special": "black"}),)


def test_llama4_tags_and_several_calls() -> None:
    output = (
        '<|python_start|>[get_weather(location="San Francisco, CA", unit="celsius"), '
        "get_time(timezone='America/Los_Angeles')]<|python_end|>"
    )
    got = parse_all_ways(make, output)
    assert got.events == (
        call(0, "get_weather", {"location": "San Francisco, CA", "unit": "celsius"}),
        call(1, "get_time", {"timezone": "America/Los_Angeles"}),
    )


def test_literal_kinds_and_text_after() -> None:
    output = (
        "[configure(flag=True, none=None, ratio=-0.5, items=[1, (2, 'x')], "
        "opts={'nested': {'k': \"v\"}}, escaped='it\\'s', raw=\"a\\/b\"), ping()]\n\nSent."
    )
    got = parse_all_ways(make, output)
    assert got.events == (
        call(
            0,
            "configure",
            {
                "flag": True,
                "none": None,
                "ratio": -0.5,
                "items": [1, [2, "x"]],
                "opts": {"nested": {"k": "v"}},
                "escaped": "it's",
                "raw": "a\\/b",
            },
        ),
        call(1, "ping", {}),
        text("Sent."),
    )


def test_code_is_never_evaluated() -> None:
    for output in (
        '[f(x=__import__("os").system("echo pwned"))]',
        "[f(x=open('/etc/passwd').read())]",
        "[f(x=1 + 1)]",
        "[f(1)]",
        "[f(**kw)]",
        "[f(x=1)(y=2)]",
        "[f(x=1e999)]",
        "[f(x=1, x=2)]",
        "[f(x={1, 2})]",
    ):
        assert parse_all_ways(make, output).events == (text(output),), output


def test_leading_bracket_that_is_not_a_call_is_text() -> None:
    for output in ("[1] Smith et al.", "[]", "[link](https://example.com)", "[ note ] [f()]"):
        assert parse_all_ways(make, output).events == (text(output),), output


def test_calls_must_come_first() -> None:
    output = "Sure! [get_weather(city='Paris')]"
    assert parse_all_ways(make, output).events == (text(output),)


def test_unterminated_list_is_text() -> None:
    output = "[get_weather(city='Par"
    assert parse_all_ways(make, output).events == (text(output),)


def test_fast_and_ast_paths_agree() -> None:
    source = '[a(x=1, y=\'s\', z=[1, "t"], v=None, w={"k": -2.5}), b(), c.d(q="é")]'
    fast = _fast_calls(source)
    assert fast is not None
    assert fast == _ast_calls(source)
    # Escapes are left to ast, whose reading of Python escapes is the right one.
    escaped = "[f(q=\"\\u00e9\\n\", r='\\x41')]"
    assert _fast_calls(escaped) is None
    assert parse_calls(escaped) == _ast_calls(escaped) == [Call("f", '{"q": "é\\n", "r": "A"}')]
