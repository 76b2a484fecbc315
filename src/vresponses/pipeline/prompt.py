"""The prompt of one turn: history + new input rendered to token ids that fit the context, truncating if asked."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vresponses.engines.base import Tokenizer
from vresponses.errors import ContextTooLong
from vresponses.parsers.base import CallFormat, ToolSpec
from vresponses.pipeline.items import Item, Message
from vresponses.pipeline.render import Prompt, Renderer
from vresponses.pipeline.request import ReasoningOptions, ResponseRequest
from vresponses.pipeline.template import ChatTemplate


@dataclass(frozen=True, slots=True)
class TurnPrompt:
    """Token ids to generate from, how much room is left for output, and the history items kept."""

    token_ids: list[int]
    opens_reasoning: bool
    room: int
    kept: tuple[Item, ...]


def template_variables(reasoning: ReasoningOptions) -> dict[str, Any]:
    """What reasoning templates read: `reasoning_effort`, and `enable_thinking` off for effort none/minimal."""
    if reasoning.effort is None:
        return {}
    return {"reasoning_effort": reasoning.effort, "enable_thinking": reasoning.effort not in ("none", "minimal")}


class PromptBuilder:
    """Renders turns with one model's template and tokenizer, within its context."""

    def __init__(self, template: ChatTemplate, tokenizer: Tokenizer, call_format: CallFormat | None, context: int):
        self.renderer = Renderer(template, tokenizer, call_format)
        self.context = context

    def build(self, history: Sequence[Item], req: ResponseRequest, tools: Sequence[ToolSpec]) -> TurnPrompt:
        """The turn's prompt; with truncation 'auto' the oldest whole turns of history go until it fits."""
        variables = template_variables(req.reasoning)

        def render(kept: Sequence[Item]) -> Prompt:
            return self.renderer.render([*kept, *req.items], req.instructions, tools, variables)

        prompt = render(history)
        kept: Sequence[Item] = history
        if len(prompt.token_ids) >= self.context and req.truncation == "auto" and history:
            kept = self._truncated(history, render)
            prompt = render(kept)
        n = len(prompt.token_ids)
        if n >= self.context:
            hint = "" if req.truncation == "auto" else " Set 'truncation': 'auto' to drop the oldest turns instead."
            raise ContextTooLong(
                f"The prompt is {n} tokens long, but this model's context is {self.context} tokens "
                f"(at least one token must be left for the output).{hint}",
                param="input",
            )
        return TurnPrompt(prompt.token_ids, prompt.opens_reasoning, self.context - n, tuple(kept))

    def _truncated(self, history: Sequence[Item], render: Callable[[Sequence[Item]], Prompt]) -> Sequence[Item]:
        """The longest tail of history, cut where a user turn starts, with which the prompt fits (or none)."""
        # Never cut between a call and its output; fewer items render fewer tokens, so bisect the cut points.
        cuts = [i for i, item in enumerate(history) if i and _turn_starts(item)] + [len(history)]
        lo, hi = 0, len(cuts) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if len(render(history[cuts[mid] :]).token_ids) < self.context:
                hi = mid
            else:
                lo = mid + 1
        return history[cuts[lo] :]

    def count(self, history: Sequence[Item], req: ResponseRequest, tools: Sequence[ToolSpec]) -> int:
        """How many tokens the turn's prompt has (no context check): `POST /responses/input_tokens`."""
        prompt = self.renderer.render(
            [*history, *req.items], req.instructions, tools, template_variables(req.reasoning)
        )
        return len(prompt.token_ids)


def _turn_starts(item: Item) -> bool:
    return isinstance(item, Message) and item.role == "user"
