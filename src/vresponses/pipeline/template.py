"""The model's chat template, compiled once in a sandbox (as transformers does) and probed for what it renders."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from jinja2 import TemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

# Used when a model ships no template: plain ChatML, which most small instruct models were tuned on.
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_PROBE_TOOL = {
    "type": "function",
    "function": {
        "name": "probe_tool_zq",
        "description": "probe",
        "parameters": {"type": "object", "properties": {}},
    },
}


class TemplateRenderError(ValueError):
    """The chat template refused this conversation (it called raise_exception or failed)."""


def _raise(message: str) -> None:
    raise TemplateRenderError(message)


def _tojson(value: Any, indent: int | None = None, ensure_ascii: bool = False, sort_keys: bool = False) -> str:
    return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii, sort_keys=sort_keys)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


class ChatTemplate:
    """Renders chat messages to prompt text; knows whether the template uses tools, tool calls and reasoning."""

    def __init__(self, source: str | None, bos_token: str | None, eos_token: str | None) -> None:
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
        env.filters["tojson"] = _tojson
        env.globals["raise_exception"] = _raise
        env.globals["strftime_now"] = _strftime_now
        self.source = source or CHATML
        self._template = env.from_string(self.source)
        self._specials = {"bos_token": bos_token or "", "eos_token": eos_token or ""}
        self.supports_tools = self._probe_tools()
        self.supports_tool_calls = self._probe_tool_calls()
        self.supports_reasoning = self._probe_reasoning()

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None = None,
        add_generation_prompt: bool = True,
        variables: Mapping[str, Any] | None = None,
    ) -> str:
        """Render messages (and tools, if the template takes them, and template variables) to the prompt text."""
        try:
            return self._template.render(
                **(variables or {}),
                messages=messages,
                tools=tools or None,
                add_generation_prompt=add_generation_prompt,
                **self._specials,
            )
        except TemplateRenderError:
            raise
        except (TemplateError, TypeError, KeyError, IndexError, ValueError) as exc:
            raise TemplateRenderError(f"the model's chat template failed: {exc}") from exc

    def _safe(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> str:
        try:
            return self.render(messages, tools, add_generation_prompt=False)
        except TemplateRenderError:
            return ""

    def _probe_tools(self) -> bool:
        messages = [{"role": "user", "content": "hi"}]
        return "probe_tool_zq" in self._safe(messages, [_PROBE_TOOL])

    def _probe_tool_calls(self) -> bool:
        call = {"id": "c1", "type": "function", "function": {"name": "probe_call_zq", "arguments": {}}}
        messages: list[dict[str, Any]] = [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "", "tool_calls": [call]},
        ]
        return "probe_call_zq" in self._safe(messages, [_PROBE_TOOL])

    def _probe_reasoning(self) -> bool:
        messages = [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "ok", "reasoning_content": "probe_thought_zq"},
            {"role": "user", "content": "again"},
        ]
        return "probe_thought_zq" in self._safe(messages)
