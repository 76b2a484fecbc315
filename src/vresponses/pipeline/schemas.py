"""Client-supplied JSON Schemas: checked once per request, and validated against with no retrieval, ever.

A schema comes from whoever holds a key, so nothing in it may make the server fetch a URL, read a file or
work without bound:

- references resolve only inside the schema itself: `$ref`, `$dynamicRef` and `$recursiveRef` must be local
  (`#...`), `$id` may not name another resource, `$schema` must be a draft this library ships; anything else
  is a 400 at check time, and validators are built on an empty `referencing.Registry` whose retrieval fails,
  so even an unchecked schema resolves nothing remote;
- patterns run on the `regex` engine with a timeout instead of Python's backtracking `re` (jsonschema's own
  `pattern`, `patternProperties` and `additionalProperties` are replaced by ours); `unevaluatedProperties`
  beside `patternProperties`, which jsonschema evaluates with `re` internally, is refused;
- each validation has a deadline and a nesting bound, checked at every keyword, so nested `anyOf`/`$ref`
  blow-ups end and a reference cycle counts as invalid.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from functools import cache, lru_cache
from typing import Any

import regex
from jsonschema import ValidationError, validators
from jsonschema.exceptions import SchemaError
from referencing import Registry
from referencing.exceptions import Unresolvable

from vresponses.errors import InvalidRequest

# A pattern longer than this is refused: none needs it, and compiling one is work the client chooses.
MAX_PATTERN_CHARS = 1000
# Wall-clock budget of one validation; real ones take microseconds.
VALIDATION_SECONDS = 0.5

_REFERENCES = ("$ref", "$dynamicRef", "$recursiveRef")
# Retrieval always fails here: references resolve within the schema being validated or not at all.
_NO_RETRIEVAL: Registry[Any] = Registry()
_deadline: ContextVar[float] = ContextVar("schema_deadline", default=float("inf"))
# Keywords nested deeper than this (a reference cycle, or absurd nesting) end the validation as invalid before
# Python's recursion limit is hit: a RecursionError inside referencing's Rust code is a panic, not an exception.
MAX_NESTING = 100


class _Nesting(threading.local):
    depth = 0


_nesting = _Nesting()


class _OutOfTime(Exception):
    """The validation's deadline passed (a blow-up or a slow pattern) or it nested too deep (a cycle)."""


def check_schema(schema: Any, param: str) -> None:
    """Raise InvalidRequest (naming param) unless schema is a valid, self-contained JSON Schema."""
    if not isinstance(schema, dict):
        raise InvalidRequest("A JSON Schema must be an object.", param=param)
    for problem in _problems(schema):
        raise InvalidRequest(f"Unsupported JSON Schema: {problem}", param=param)
    try:
        _validator_class(schema).check_schema(schema)
    except SchemaError as exc:
        raise InvalidRequest(f"Invalid JSON Schema: {exc.message}", param=param) from None


def validates(schema: Mapping[str, Any], value: Any) -> bool:
    """Whether value validates against schema, within VALIDATION_SECONDS and without retrieving anything.

    Anything that cannot be shown valid in time (an unresolvable reference, a cycle, a slow pattern) is False.
    """
    base = _validator_class(schema)
    token = _deadline.set(time.monotonic() + VALIDATION_SECONDS)
    try:
        return bool(_bounded(base)(schema, registry=_NO_RETRIEVAL).is_valid(value))
    except (Unresolvable, _OutOfTime):
        return False
    finally:
        _deadline.reset(token)


def _validator_class(schema: Mapping[str, Any]) -> Any:
    """The draft's validator class named by `$schema`; the newest draft when it names none this library ships."""
    meta = schema.get("$schema")
    if isinstance(meta, str) and meta.rstrip("#") in _meta_schema_uris():
        return validators.validator_for(schema)
    return validators.Draft202012Validator


def _problems(schema: dict[str, Any]) -> Iterator[str]:
    """What makes a schema unsafe to validate with, found by walking every object in it (no recursion)."""
    known = _meta_schema_uris()
    stack: list[tuple[Any, str]] = [(schema, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, list):
            stack.extend((child, f"{path}/{i}") for i, child in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        for key in _REFERENCES:
            ref = node.get(key)
            if isinstance(ref, str) and not ref.startswith("#"):
                yield f"{key} {ref!r} at '{path or '/'}' points outside the schema; only local '#...' references work."
        ident = node.get("$id")
        if isinstance(ident, str) and not ident.startswith("#"):
            yield f"$id {ident!r} at '{path or '/'}' names another resource; leave '$id' out."
        meta = node.get("$schema")
        if meta is not None and (not isinstance(meta, str) or meta.rstrip("#") not in known):
            yield f"$schema {meta!r} at '{path or '/'}' is not a draft this server knows."
        patterns = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        if isinstance(node.get("patternProperties"), dict):
            patterns.extend(node["patternProperties"])
            if "unevaluatedProperties" in node:
                yield f"'unevaluatedProperties' beside 'patternProperties' at '{path or '/'}' is not supported."
        for pattern in patterns:
            if len(pattern) > MAX_PATTERN_CHARS:
                yield f"a pattern at '{path or '/'}' is longer than {MAX_PATTERN_CHARS} characters."
            elif not _compiles(pattern):
                yield f"pattern {pattern!r} at '{path or '/'}' is not a valid regular expression."
        stack.extend((child, f"{path}/{key}") for key, child in node.items())


@cache
def _meta_schema_uris() -> frozenset[str]:
    drafts = (
        validators.Draft3Validator,
        validators.Draft4Validator,
        validators.Draft6Validator,
        validators.Draft7Validator,
        validators.Draft201909Validator,
        validators.Draft202012Validator,
    )
    return frozenset(str(cls.META_SCHEMA.get("$id") or cls.META_SCHEMA.get("id")).rstrip("#") for cls in drafts)


def _compiles(pattern: str) -> bool:
    try:
        _compiled(pattern)
    except (regex.error, TimeoutError):
        return False
    return True


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> regex.Pattern[str]:
    return regex.compile(pattern)


def _search(pattern: str, text: str) -> bool:
    """regex.search with what is left of this validation's time; _OutOfTime when it runs out."""
    left = _deadline.get() - time.monotonic()
    if left <= 0:
        raise _OutOfTime
    try:
        return _compiled(pattern).search(text, timeout=left) is not None
    except TimeoutError:
        raise _OutOfTime from None
    except regex.error:
        return False


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: dict[str, Any], instance: Any, schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator: Any, additional: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = [key for key in instance if key not in properties and not any(_search(p, key) for p in patterns)]
    if validator.is_type(additional, "object"):
        for key in extras:
            yield from validator.descend(instance[key], additional, path=key)
    elif additional is False and extras:
        yield ValidationError(f"Additional properties are not allowed ({', '.join(map(repr, extras))} unexpected)")


_OURS: dict[str, Callable[..., Iterator[Any]]] = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
}


def _timed(keyword: Callable[..., Any]) -> Callable[..., Iterator[Any]]:
    def checked(validator: Any, value: Any, instance: Any, schema: Any) -> Iterator[Any]:
        if time.monotonic() > _deadline.get() or _nesting.depth >= MAX_NESTING:
            raise _OutOfTime
        _nesting.depth += 1
        try:
            yield from keyword(validator, value, instance, schema) or ()
        finally:
            _nesting.depth -= 1

    return checked


@cache
def _bounded(base: Any) -> Any:
    """base's validator class with our pattern keywords and a deadline check before every keyword."""
    keywords = {name: _timed(_OURS.get(name, fn)) for name, fn in base.VALIDATORS.items()}
    return validators.extend(base, keywords)
