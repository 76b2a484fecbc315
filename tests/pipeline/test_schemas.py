"""Client JSON Schemas never cause retrieval, and validating against them is bounded in time."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tests.listener import Listener
from vresponses.errors import InvalidRequest
from vresponses.parsers.base import ToolSpec
from vresponses.pipeline.schemas import VALIDATION_SECONDS, check_schema, validates
from vresponses.pipeline.tools import arguments_valid


def _tool(parameters: dict[str, Any]) -> ToolSpec:
    return ToolSpec("f", None, parameters)


@pytest.mark.parametrize("wrap", ["direct", "not"])
def test_arguments_valid_never_fetches_a_remote_ref(wrap: str) -> None:
    with Listener().running() as listener:
        ref = {"$ref": listener.url + "/evil.json"}
        x = ref if wrap == "direct" else {"type": "integer", "not": ref}
        tool = _tool({"type": "object", "properties": {"x": x}})
        assert not arguments_valid(tool, '{"x": 1}' if wrap == "not" else '{"x": "s"}')
    assert listener.paths == []


def test_arguments_valid_never_reads_a_file_ref(watch_dev_zero: list[str]) -> None:
    tool = _tool({"type": "object", "properties": {"x": {"$ref": "file:///dev/zero"}}})
    assert not arguments_valid(tool, '{"x": 1}')
    assert watch_dev_zero == []


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"x": {"$ref": "http://127.0.0.1:9/x.json"}}},
        {"type": "object", "properties": {"x": {"not": {"$ref": "file:///dev/zero"}}}},
        {"type": "object", "$defs": {"a": {"$dynamicRef": "https://example.com/s#meta"}}},
        {"type": "object", "properties": {"x": {"$id": "http://127.0.0.1:9/", "$ref": "#/$defs/y"}}},
        {"$schema": "http://127.0.0.1:9/meta.json", "type": "object"},
        {"type": "object", "properties": {"x": {"type": "string", "pattern": "a" * 1001}}},
        {"type": "object", "properties": {"x": {"type": "string", "pattern": "(unclosed"}}},
        {"type": "object", "patternProperties": {"^a": {}}, "unevaluatedProperties": False},
    ],
)
def test_check_schema_refuses_what_could_retrieve_or_run_unbounded(schema: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest) as info:
        check_schema(schema, "tools[0].parameters")
    assert info.value.param == "tools[0].parameters"


def test_local_refs_and_known_drafts_work() -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "definitions": {"city": {"type": "string", "pattern": "^[A-Z]"}},
        "properties": {"city": {"$ref": "#/definitions/city"}},
        "patternProperties": {"^n_": {"type": "integer"}},
        "additionalProperties": False,
    }
    check_schema(schema, "p")
    assert validates(schema, {"city": "Paris", "n_people": 3})
    assert not validates(schema, {"city": "paris"})
    assert not validates(schema, {"city": "Paris", "n_people": "3"})
    assert not validates(schema, {"city": "Paris", "other": 1})


def _finishes(fn: Any, seconds: float) -> list[Any]:
    # Runs fn in a daemon thread: a regression leaves a spinning thread behind, but the test fails in time.
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    thread.join(seconds)
    return out


def test_catastrophic_pattern_is_bounded() -> None:
    schema = {"type": "object", "properties": {"x": {"type": "string", "not": {"pattern": "^(a+)+$"}}}}
    started = time.monotonic()
    arguments = '{"x": "' + "a" * 40 + '!"}'
    limit = 10 * VALIDATION_SECONDS + 5
    assert _finishes(lambda: arguments_valid(_tool(schema), arguments), limit) in ([True], [False])
    assert time.monotonic() - started < limit


def test_catastrophic_pattern_property_and_additional_properties_are_bounded() -> None:
    schema = {"type": "object", "patternProperties": {"^(a|aa)+$": {}}, "additionalProperties": False}
    arguments = '{"' + "a" * 60 + '!": 1}'
    assert _finishes(lambda: arguments_valid(_tool(schema), arguments), 10 * VALIDATION_SECONDS + 5) == [False]


def test_exponential_anyof_blowup_is_bounded() -> None:
    depth = 40
    defs = {f"d{i}": {"anyOf": [{"$ref": f"#/$defs/d{i + 1}"}, {"$ref": f"#/$defs/d{i + 1}"}]} for i in range(depth)}
    defs[f"d{depth}"] = {"type": "string"}
    schema = {"$defs": defs, "type": "object", "properties": {"x": {"$ref": "#/$defs/d0"}}}
    check_schema(schema, "p")
    assert _finishes(lambda: arguments_valid(_tool(schema), '{"x": 1}'), 10 * VALIDATION_SECONDS + 5) == [False]


def test_a_reference_cycle_is_invalid_not_an_error() -> None:
    assert not arguments_valid(_tool({"type": "object", "$ref": "#"}), "{}")
