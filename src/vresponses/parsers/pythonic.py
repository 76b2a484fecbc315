"""Pythonic tool calls (Llama 3.2, Llama 4): the output is a Python list of calls with keyword literal
arguments, `[get_weather(city="Paris"), get_time()]`, optionally inside `<|python_start|>…<|python_end|>`."""

from __future__ import annotations

import ast
import json
import math
import re
import warnings
from collections.abc import Sequence

from vresponses.parsers.base import Piece, ToolSpec, tool_parser
from vresponses.parsers.brackets import PYTHON, BracketScanner
from vresponses.parsers.calls import Call, StreamingToolParser
from vresponses.parsers.stream import Literals, skip_space

PYTHON_START = "<|python_start|>"
PYTHON_END = "<|python_end|>"
# The head `[name(` decides whether a leading `[` opens calls; bounded so that deciding is cheap.
_HEAD = re.compile(r"\[\s{0,32}[A-Za-z_][\w.]{0,200}\s{0,32}\(")
_HEAD_SO_FAR = re.compile(r"\[\s{0,32}(?:[A-Za-z_][\w.]{0,200}\s{0,32})?")
_HEAD_LIMIT = 270


class _NotLiteral(ValueError):
    """An argument is not a JSON-representable literal."""


def _json_value(value: object) -> object:
    """Check a literal_eval result is JSON (tuples become lists); raise _NotLiteral otherwise."""
    if isinstance(value, bool | str | int) or value is None:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _json_value(v) for k, v in value.items()}
    raise _NotLiteral(repr(value)[:80])


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _ast_calls(source: str) -> list[Call] | None:
    """The general path: parse with ast (never evaluated) and read literal keyword arguments."""
    try:
        with warnings.catch_warnings():
            # Invalid escapes ("\\/") only warn; the literal is still well defined.
            warnings.simplefilter("ignore")
            tree = ast.parse(source.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if not isinstance(tree.body, ast.List) or not tree.body.elts:
        return None
    calls: list[Call] = []
    for node in tree.body.elts:
        if not isinstance(node, ast.Call) or node.args:
            return None
        name = _dotted(node.func)
        if name is None:
            return None
        arguments: dict[str, object] = {}
        for keyword in node.keywords:
            if keyword.arg is None or keyword.arg in arguments:  # **kwargs, or a repeated keyword
                return None
            try:
                arguments[keyword.arg] = _json_value(ast.literal_eval(keyword.value))
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                return None
        calls.append(Call(name, json.dumps(arguments, ensure_ascii=False)))
    return calls


_CALL_HEAD = re.compile(r"\s*([A-Za-z_][\w.]*)\s*\(\s*")
_KEYWORD = re.compile(r"([A-Za-z_]\w*)\s*=\s*")
_AFTER_VALUE = re.compile(r"\s*([,)])\s*")
_AFTER_CALL = re.compile(r"\s*([,\]])\s*")
_CONSTANT = re.compile(r"(True|False|None)(?![\w.])")
_CONSTANTS = {"True": True, "False": False, "None": None}
_PLAIN_SINGLE = re.compile(r"'([^'\\\n]*)'")
_JSON = json.JSONDecoder()


def _fast_value(source: str, pos: int) -> tuple[object, int] | None:
    """Values whose Python and JSON spellings agree, plus constants and escape-free single-quoted strings."""
    char = source[pos : pos + 1]
    if char == "'":
        match = _PLAIN_SINGLE.match(source, pos)
        return None if match is None else (match.group(1), match.end())
    if char in ("T", "F", "N"):
        match = _CONSTANT.match(source, pos)
        return None if match is None else (_CONSTANTS[match.group(1)], match.end())
    if char not in ('"', "[", "{", "-") and not char.isdigit():
        return None
    try:
        value, end = _JSON.raw_decode(source, pos)
    except (ValueError, RecursionError):
        return None
    if "\\" in source[pos:end] or not _json_value_ok(value):
        # Escapes differ between JSON and Python ("\\/"); let ast decide those.
        return None
    return value, end


def _json_value_ok(value: object) -> bool:
    try:
        _json_value(value)
    except _NotLiteral:
        return False
    return True


def _fast_calls(source: str) -> list[Call] | None:
    """The common shape `[f(a=1, b="x"), g()]` read with a few regexes per argument; None means "not sure",
    never "malformed", so that ast stays the only judge of anything unusual."""
    if not source.startswith("["):
        return None
    calls: list[Call] = []
    pos = 1
    while True:
        head = _CALL_HEAD.match(source, pos)
        if head is None:
            return None
        pos = head.end()
        arguments: dict[str, object] = {}
        while not source.startswith(")", pos):
            key = _KEYWORD.match(source, pos)
            if key is None or key.group(1) in arguments:
                return None
            value = _fast_value(source, key.end())
            if value is None:
                return None
            arguments[key.group(1)], pos = value
            after = _AFTER_VALUE.match(source, pos)
            if after is None:
                return None
            if after.group(1) == ")":
                pos = after.start(1)
                break
            pos = after.end()
        pos += 1  # the call's ")"
        calls.append(Call(head.group(1), json.dumps(arguments, ensure_ascii=False)))
        after = _AFTER_CALL.match(source, pos)
        if after is None:
            return None
        pos = after.end()
        if after.group(1) == "]":
            return calls if pos == len(source) else None
        if source.startswith("]", pos):  # a trailing comma
            return calls if pos + 1 == len(source) else None


def parse_calls(source: str) -> list[Call] | None:
    """Calls from `[f(a=1), g()]` source without evaluating it: only keyword arguments with literal values
    are accepted; None for anything else."""
    source = source.strip()
    return _fast_calls(source) or _ast_calls(source)


@tool_parser
class PythonicToolParser(StreamingToolParser):
    """Emits calls when the output starts (after spaces and an optional `<|python_start|>`) with `[name(`
    and the list parses with ast once its brackets balance, and text for everything else."""

    name = "pythonic"
    keeps_special_tokens = True
    call_format = None

    def __init__(self, tools: Sequence[ToolSpec]) -> None:
        super().__init__(tools)
        self._start_tag = Literals(PYTHON_START)
        self._end_tag = Literals(PYTHON_END)
        self._tagged = False
        self._head = ""
        self._scanner = BracketScanner(PYTHON)
        self._goto(self._at_start, self._end_markup)

    def _at_start(self, text: str, pos: int, out: list[Piece]) -> int:
        if not self._start_tag.got:
            end = skip_space(text, pos)
            if self._tagged:
                self._raw.append(text[pos:end])
            else:
                self._plain(text[pos:end])
            if end == len(text):
                return end
            pos = end
            if text[pos] == "[":
                self._goto(self._at_head, self._end_head)
                return pos
            if self._tagged:
                return self._not_calls(pos, out)
        found, end = self._start_tag.push(text, pos)
        if found is None:
            return end
        if found is False:
            self._raw.append(self._start_tag.reset())
            return self._not_calls(pos, out)
        self._raw.append(PYTHON_START)
        self._tagged = True
        return end

    def _not_calls(self, pos: int, out: list[Piece]) -> int:
        self._fail()
        self._goto(self._in_rest, self._end_rest)
        return pos

    def _at_head(self, text: str, pos: int, out: list[Piece]) -> int:
        taken = text[pos : pos + _HEAD_LIMIT - len(self._head)]
        head = self._head + taken
        match = _HEAD.match(head)
        if match is not None:
            used = match.end() - len(self._head)
            self._head = ""
            self._body.add(head[: match.end()])
            self._scanner.push(head[: match.end()], 0)  # `[` and `(` open; nothing in a matched head can close.
            self._goto(self._in_calls, self._end_calls)
            return pos + used
        so_far = _HEAD_SO_FAR.match(head)
        if so_far is not None and so_far.end() == len(head) and pos + len(taken) == len(text):
            self._head = head
            return len(text)
        self._raw.append(self._head)
        self._head = ""
        return self._not_calls(pos, out)

    def _end_head(self, out: list[Piece]) -> None:
        self._raw.append(self._head)
        self._head = ""
        self._fail()

    def _in_calls(self, text: str, pos: int, out: list[Piece]) -> int:
        end = self._scanner.push(text, pos)
        self._body.add(text[pos:end])
        if end is None:
            return len(text)
        body = self._body.take()
        calls = parse_calls(body)
        if calls is None:
            self._fail(body)
            self._goto(self._in_rest, self._end_rest)
        else:
            self._emit(calls, out)
            self._goto(self._after_calls, self._end_after)
        return end

    def _end_calls(self, out: list[Piece]) -> None:
        self._fail(self._body.take())

    def _after_calls(self, text: str, pos: int, out: list[Piece]) -> int:
        if not self._end_tag.got:
            # Whitespace after a call is dropped anyway, so it may be skipped before the end tag.
            pos = skip_space(text, pos)
            if pos == len(text):
                return pos
        found, end = self._end_tag.push(text, pos)
        if found is None:
            return end
        self._goto(self._in_rest, self._end_rest)
        if found is False:
            self._plain(self._end_tag.reset())
            return pos
        return end

    def _end_after(self, out: list[Piece]) -> None:
        self._plain(self._end_tag.reset())

    def _end_markup(self, out: list[Piece]) -> None:
        self._raw.append(self._start_tag.reset())
        self._fail()
