"""The one place that knows the order: validate -> resolve history -> render -> generate -> collect -> store."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field, replace

import anyio

from vresponses.engines.base import Engine, Placement, SamplingOptions
from vresponses.errors import ContextTooLong, InvalidRequest, NotFound
from vresponses.parsers import REASONING_PARSERS, TOOL_PARSERS, lookup
from vresponses.pipeline.events import Event, Finished
from vresponses.pipeline.generate import Plan, generate
from vresponses.pipeline.items import Item, decode_items, encode_items
from vresponses.pipeline.render import Renderer
from vresponses.pipeline.request import ResponseRequest
from vresponses.pipeline.response import Collector, ResponseObject, encode_response, new_response_id, replica_of
from vresponses.pipeline.template import ChatTemplate
from vresponses.pipeline.tools import check_tools, constraint, forced_tools
from vresponses.store.base import UNFINISHED, Store, StoredResponse

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """Choices made once at start-up."""

    tool_parser: str = "hermes"
    reasoning_parser: str | None = None


@dataclass(slots=True)
class Prepared:
    """A request that passed every check: its response skeleton, generation plan and the items it adds."""

    response: ResponseObject
    plan: Plan
    items: tuple[Item, ...]
    tenant: str
    # What an interrupted run is stored as: a client that went away leaves it incomplete, a cancel cancelled.
    on_interrupt: str = "incomplete"
    # Sub-second creation time: retention removes the oldest first, and many responses share a second.
    created_at: float = field(default_factory=time.time)


def tenant_of(key: str | None) -> str:
    """The tenant id stored with a response: a digest of the API key, never the key itself."""
    if not key:
        return ""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class Responder:
    """Runs create-response requests against one engine and one store."""

    def __init__(self, engine: Engine, store: Store, config: ServiceConfig) -> None:
        self.engine = engine
        self.store = store
        self.config = config
        self._tool_parser = lookup(TOOL_PARSERS, config.tool_parser, "tool-call")
        self._reasoning_parser = (
            lookup(REASONING_PARSERS, config.reasoning_parser, "reasoning") if config.reasoning_parser else None
        )
        tok = engine.tokenizer
        template = ChatTemplate(tok.chat_template, tok.bos_token, tok.eos_token)
        self.renderer = Renderer(template, tok, self._tool_parser.call_format)

    async def prepare(self, req: ResponseRequest) -> Prepared:
        """Check everything that can fail before generation starts; raise APIError subclasses."""
        check_tools(req.tools, req.tool_choice)
        if req.background and not req.store:
            raise InvalidRequest("background responses must be stored; drop 'store': false.", param="background")
        history, affinity = (
            await self.history(req.previous_response_id, req.tenant) if req.previous_response_id else ([], None)
        )
        offered = () if req.tool_choice.mode == "none" else req.tools
        prompt = self.renderer.render([*history, *req.items], req.instructions, offered)
        limit = self.engine.info.max_model_len
        n = len(prompt.token_ids)
        if n >= limit:
            raise ContextTooLong(
                f"The prompt is {n} tokens long, but this model's context is {limit} tokens "
                f"(at least one token must be left for the output).",
                param="input",
            )
        max_tokens = limit - n if req.max_output_tokens is None else min(req.max_output_tokens, limit - n)
        response_id = new_response_id()
        forced = forced_tools(req.tools, req.tool_choice)
        parser_cls = self._tool_parser
        options = SamplingOptions(
            max_tokens=max_tokens,
            temperature=1.0 if req.temperature is None else req.temperature,
            top_p=1.0 if req.top_p is None else req.top_p,
            stop=req.stop,
            logprobs=req.top_logprobs,
            skip_special_tokens=not (offered and parser_cls.keeps_special_tokens),
        )
        if req.top_p == 0:
            # vLLM rejects top_p=0; the API allows it and it can only mean the single most likely token.
            options = replace(options, temperature=0.0, top_p=1.0)
        if forced:
            options = replace(options, constraint=constraint(forced, req.parallel_tool_calls, parser_cls.call_format))
            if parser_cls.call_format is None:
                parser_cls = lookup(TOOL_PARSERS, "json", "tool-call")
        plan = Plan(
            request_id=response_id,
            prompt_token_ids=prompt.token_ids,
            options=options,
            tool_parser=parser_cls(offered) if offered else None,
            reasoning_parser=self._reasoning_parser(prompt.opens_reasoning) if self._reasoning_parser else None,
            forced={t.name: t for t in forced} if forced else None,
            placement=Placement(affinity=affinity),
        )
        response = ResponseObject(
            id=response_id,
            created=int(time.time()),
            model=self.engine.info.name,
            status="queued" if req.background else "in_progress",
            instructions=req.instructions,
            temperature=req.temperature,
            top_p=req.top_p,
            max_output_tokens=req.max_output_tokens,
            tool_choice=req.tool_choice.wire() if req.tools else req.tool_choice.mode,
            tools=list(req.tools),
            parallel_tool_calls=req.parallel_tool_calls,
            top_logprobs=req.top_logprobs,
            user=req.user,
            metadata=req.metadata,
            background=req.background,
            store=req.store,
            previous_response_id=req.previous_response_id,
        )
        return Prepared(response=response, plan=plan, items=req.items, tenant=req.tenant)

    async def history(self, response_id: str, tenant: str) -> tuple[list[Item], str | None]:
        """Every item of the stored chain ending at response_id, oldest first, and the replica that served its
        last turn; 404 if any link is gone."""
        chain = await self.store.chain(response_id, tenant)
        if chain is None:
            raise NotFound(f"No response with id {response_id!r} was found.", param="previous_response_id")
        if chain[-1].status in UNFINISHED:
            raise InvalidRequest(
                f"Response {response_id!r} is still {chain[-1].status}; wait for it to finish.",
                param="previous_response_id",
            )
        items: list[Item] = []
        for row in chain:
            items.extend(decode_items(row.input_items))
            items.extend(decode_items(row.output_items))
        return items, replica_of(chain[-1].body)

    async def run(self, prepared: Prepared) -> AsyncGenerator[Event, None]:
        """Generate, stream the events, and store the result before the last event is passed on."""
        collector = Collector(prepared.response)
        finished = False
        status = prepared.on_interrupt
        try:
            async with aclosing(generate(self.engine, prepared.plan)) as events:
                async for event in events:
                    collector.add(event)
                    if isinstance(event, Finished):
                        finished = True
                        await self.save(prepared, collector.result())
                    yield event
        except Exception as exc:
            status = "failed"
            collector.response.error = type(exc).__name__
            raise
        finally:
            if not finished and prepared.response.store:
                # Keep what was generated, marked as interrupted, even though this task is being cancelled.
                with anyio.CancelScope(shield=True):
                    try:
                        await self.save(prepared, collector.result(status=status))
                    except Exception:
                        log.exception("could not store interrupted response %s", prepared.response.id)

    async def complete(self, prepared: Prepared) -> ResponseObject:
        """Run to the end and return the collected response: non-streaming is this, over the same events."""
        async with aclosing(self.run(prepared)) as events:
            async for _ in events:
                pass
        return prepared.response

    async def save(self, prepared: Prepared, response: ResponseObject) -> None:
        """Write the finished response in one transaction (inserting it, or finishing a queued row)."""
        if not response.store:
            return
        response.completed_at = int(time.time())
        row = self.row(prepared, response)
        if response.background:
            await self.store.finish(row)
        else:
            await self.store.insert(row)

    @staticmethod
    def row(prepared: Prepared, response: ResponseObject) -> StoredResponse:
        """The store row for this response as it stands."""
        now = time.time()
        return StoredResponse(
            id=response.id,
            tenant=prepared.tenant,
            previous_response_id=response.previous_response_id,
            status=response.status,
            created_at=prepared.created_at,
            updated_at=now,
            input_items=encode_items(prepared.items),
            output_items=encode_items(response.output),
            body=encode_response(response),
        )
