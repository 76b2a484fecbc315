"""The validated request as the pipeline sees it: plain typed values, no wire concerns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vresponses.parsers.base import ToolSpec
from vresponses.pipeline.items import Item


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """`none`, `auto`, `required`, `function` (name: the forced tool), `web_search` (name: the built-in type the
    client named) or `allowed_tools` (a subset, auto/required)."""

    mode: str = "auto"
    name: str | None = None
    # With mode "allowed_tools": the tools the model may use, and whether it must use one.
    allowed: tuple[str, ...] = ()
    require: bool = False

    def wire(self) -> str:
        """The setting as the Gradient dialect echoes it: the mode, or the forced function's name."""
        return self.name if self.mode == "function" and self.name else self.mode


@dataclass(frozen=True, slots=True)
class TextFormat:
    """The output format: plain `text`, any `json_object`, or a `json_schema` (enforced by constrained decoding)."""

    type: str = "text"
    name: str | None = None
    schema: dict[str, Any] | None = None
    description: str | None = None
    strict: bool | None = None


@dataclass(frozen=True, slots=True)
class ReasoningOptions:
    """Reasoning settings passed to templates that take them."""

    effort: str | None = None
    summary: str | None = None


@dataclass(frozen=True, slots=True)
class ResponseRequest:
    """One create-response call after validation; defaults match the API's."""

    model: str
    items: tuple[Item, ...]
    instructions: str | None = None
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = field(default_factory=ToolChoice)
    parallel_tool_calls: bool = True
    temperature: float | None = None
    top_p: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    max_output_tokens: int | None = None
    stop: tuple[str, ...] = ()
    top_logprobs: int | None = None
    stream: bool = False
    include_usage: bool = False
    metadata: dict[str, str] | None = None
    user: str | None = None
    store: bool = True
    background: bool = False
    previous_response_id: str | None = None
    tenant: str = ""
    text: TextFormat = field(default_factory=TextFormat)
    verbosity: str | None = None
    reasoning: ReasoningOptions = field(default_factory=ReasoningOptions)
    truncation: str = "disabled"
    max_tool_calls: int | None = None
    include: tuple[str, ...] = ()
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    service_tier: str | None = None
    # Server-run tools the request asked for (today: "web_search").
    builtin_tools: tuple[str, ...] = ()
