"""The validated request as the pipeline sees it: plain typed values, no wire concerns."""

from __future__ import annotations

from dataclasses import dataclass, field

from vresponses.parsers.base import ToolSpec
from vresponses.pipeline.items import Item


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """`none`, `auto`, `required`, or `function` with the forced tool's name."""

    mode: str = "auto"
    name: str | None = None

    def wire(self) -> str:
        """The setting as echoed back: the mode, or the forced function's name."""
        return self.name if self.mode == "function" and self.name else self.mode


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
