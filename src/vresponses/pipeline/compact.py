"""Compaction: the conversation so far, summarized by the model into one item a new chain can start from."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from vresponses.pipeline.events import Usage
from vresponses.pipeline.items import Compaction, Message, new_id
from vresponses.pipeline.request import ResponseRequest, TextFormat, ToolChoice
from vresponses.pipeline.service import Responder

INSTRUCTION = (
    "Summarize the conversation so far for whoever continues it: keep every fact, decision, name, number and "
    "open question, in as few words as that takes. Write only the summary."
)
MAX_SUMMARY_TOKENS = 512


@dataclass(frozen=True, slots=True)
class Compacted:
    """The compaction's id, when it was made, the items to continue from, and what summarizing cost."""

    id: str
    created_at: int
    output: list[tuple[Compaction, str]]
    usage: Usage


async def compact(responder: Responder, req: ResponseRequest) -> Compacted:
    """Summarize req's conversation (its input after its previous_response_id chain) with the model, unstored."""
    ask = replace(
        req,
        items=(*req.items, Message(role="user", content=INSTRUCTION)),
        store=False,
        stream=False,
        background=False,
        tools=(),
        tool_choice=ToolChoice("none"),
        max_output_tokens=min(req.max_output_tokens or MAX_SUMMARY_TOKENS, MAX_SUMMARY_TOKENS),
        temperature=0.0,
        text=TextFormat(),
        truncation="auto",
    )
    result = await responder.complete(await responder.prepare(ask))
    item = Compaction(id=new_id("cmp"), summary=result.text.strip())
    return Compacted(
        id="resp_" + item.id[4:],
        created_at=int(time.time()),
        output=[(item, item.id)],
        usage=result.usage or Usage(0, 0, 0),
    )
