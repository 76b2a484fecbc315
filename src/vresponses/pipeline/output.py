"""Output items as they are produced: the one place that mints item ids, opens and closes items, and builds them.

Generation feeds it parsed pieces; it answers with the item events to stream. Whoever runs the response keeps the
same builder, so an interrupted run can still store what was produced (`snapshot`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from vresponses.engines.base import TokenLogprob
from vresponses.parsers.base import ToolSpec
from vresponses.pipeline.events import (
    ArgumentsDelta,
    ItemDone,
    ItemEvent,
    ItemKind,
    ItemStarted,
    ReasoningDelta,
    TextDelta,
)
from vresponses.pipeline.items import FunctionCall, Item, Message, Reasoning, new_id


@dataclass(slots=True)
class _Open:
    """The item being produced now."""

    kind: ItemKind
    item_id: str
    index: int
    call_id: str | None = None
    name: str | None = None
    # The called tool when the client declared it freeform or inside a namespace (else None).
    tool: ToolSpec | None = None
    parts: list[str] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)


class OutputBuilder:
    """Turns pieces into item events in model order: text → call → text is three items."""

    def __init__(self, with_logprobs: bool = False, first_index: int = 0, tools: Sequence[ToolSpec] = ()) -> None:
        self.items: list[Item] = []
        # Tools whose calls are written back differently (freeform or namespaced), by name; usually none.
        self._special = {t.name: t for t in tools if t.custom or t.namespace}
        self._with_logprobs = with_logprobs
        self._next_index = first_index
        self._first_index = first_index
        self._open: _Open | None = None
        # Streamed calls by the parser's call index, so a call's later fragments find their item.
        self._calls: dict[int, _Open] = {}

    @property
    def next_index(self) -> int:
        """The output index the next item will get."""
        return self._next_index

    @property
    def calls(self) -> int:
        """How many function calls have been started."""
        return sum(1 for i in self.items if isinstance(i, FunctionCall)) + (
            1 if self._open is not None and self._open.kind == "function_call" else 0
        )

    def _start(self, kind: ItemKind, prefix: str, out: list[ItemEvent], name: str | None = None) -> _Open:
        out.extend(self.close())
        call_id = new_id("call") if kind == "function_call" else None
        tool = self._special.get(name) if name and self._special else None
        if tool is not None and tool.custom:
            prefix = "ctc"
        item = _Open(kind, new_id(prefix), self._next_index, call_id, name, tool)
        self._next_index += 1
        self._open = item
        custom, namespace = (tool.custom, tool.namespace) if tool else (False, None)
        out.append(ItemStarted(item.item_id, item.index, kind, call_id, name, custom, namespace))
        return item

    def text(self, text: str, logprobs: tuple[TokenLogprob, ...] = ()) -> list[ItemEvent]:
        """Message text: continues the open message or starts one."""
        out: list[ItemEvent] = []
        item = self._open if self._open is not None and self._open.kind == "message" else None
        if item is None:
            item = self._start("message", "msg", out)
        item.parts.append(text)
        if self._with_logprobs:
            item.logprobs.extend(logprobs)
        out.append(TextDelta(item.item_id, item.index, text, logprobs))
        return out

    def reasoning(self, text: str) -> list[ItemEvent]:
        """Reasoning text: continues the open reasoning item or starts one."""
        out: list[ItemEvent] = []
        item = self._open if self._open is not None and self._open.kind == "reasoning" else None
        if item is None:
            item = self._start("reasoning", "rs", out)
        item.parts.append(text)
        out.append(ReasoningDelta(item.item_id, item.index, text))
        return out

    def call(self, index: int, name: str | None, arguments: str) -> list[ItemEvent]:
        """A fragment of the index-th call the parser found; its first fragment names the function."""
        out: list[ItemEvent] = []
        item = self._calls.get(index)
        if item is None:
            item = self._calls[index] = self._start("function_call", "fc", out, name or "")
        if arguments:
            item.parts.append(arguments)
            out.append(ArgumentsDelta(item.item_id, item.index, arguments))
        return out

    def whole_call(self, name: str, arguments: str) -> list[ItemEvent]:
        """A complete call at once (forced calls are emitted only after they validate)."""
        out: list[ItemEvent] = []
        item = self._start("function_call", "fc", out, name)
        item.parts.append(arguments)
        out.append(ArgumentsDelta(item.item_id, item.index, arguments))
        out.extend(self.close())
        return out

    def add(self, item: Item) -> int:
        """Append an item made elsewhere (a server-run tool's call); returns its output index."""
        self.close()
        index = self._next_index
        self._next_index += 1
        self.items.append(item)
        return index

    def update(self, index: int, item: Item) -> None:
        """Replace the finished item at this output index (a search's final state, a message's citations)."""
        self.items[index - self._first_index] = item

    def close(self, status: str = "completed") -> list[ItemEvent]:
        """Finish the open item, if any; its ItemDone carries the built item."""
        item, self._open = self._open, None
        if item is None:
            return []
        built = self._build(item, status)
        self.items.append(built)
        return [ItemDone(item.index, built)]

    def _build(self, item: _Open, status: str) -> Item:
        text = "".join(item.parts)
        if item.kind == "message":
            logprobs = tuple(item.logprobs) if self._with_logprobs else None
            return Message(role="assistant", content=text, id=item.item_id, status=status, logprobs=logprobs)
        if item.kind == "reasoning":
            return Reasoning(id=item.item_id, text=text, status=status)
        tool = item.tool
        return FunctionCall(
            call_id=item.call_id or "",
            name=item.name or "",
            arguments=text,
            id=item.item_id,
            status=status,
            custom=tool is not None and tool.custom,
            namespace=tool.namespace if tool else None,
        )

    def snapshot(self) -> list[Item]:
        """Everything produced so far, the open item included (as incomplete): what an interrupted run stores."""
        if self._open is None:
            return list(self.items)
        return [*self.items, self._build(self._open, "incomplete")]
