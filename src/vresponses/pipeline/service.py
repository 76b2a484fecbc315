"""The one place that knows the order: validate -> resolve history -> render -> generate -> store -> events."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field, replace

import anyio
import msgspec

from vresponses.engines.base import Engine, Placement
from vresponses.errors import InvalidRequest, NotFound
from vresponses.parsers import REASONING_PARSERS, TOOL_PARSERS, lookup
from vresponses.parsers.base import ToolSpec
from vresponses.pipeline.admission import reason
from vresponses.pipeline.events import Event, Failed, Finished, ItemEvent, Started, Status
from vresponses.pipeline.generate import Plan, Stopped, generate
from vresponses.pipeline.items import Item, ItemReference, decode_items, encode_items
from vresponses.pipeline.limits import Limits, chain_too_large, check_request
from vresponses.pipeline.output import OutputBuilder
from vresponses.pipeline.prompt import PromptBuilder
from vresponses.pipeline.request import ResponseRequest
from vresponses.pipeline.response import ResponseObject, encode_response, new_response, new_response_id, replica_of
from vresponses.pipeline.sampling import sampling_options
from vresponses.pipeline.search import SearchConfig, SearchTurn, WebSearch, check_search_configured, search_tools
from vresponses.pipeline.template import ChatTemplate
from vresponses.pipeline.tenants import Tenants
from vresponses.pipeline.tools import check_output_format, check_tools, forced_tools, offered_tools
from vresponses.store.base import ChainLink, ChainTooLarge, Store, StoredResponse

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """Choices made once at start-up."""

    tool_parser: str = "hermes"
    reasoning_parser: str | None = None
    # Server-run web search (--web-search); None: a request that asks for it is a 400.
    web_search: SearchConfig | None = None


@dataclass(frozen=True, slots=True)
class Conversation:
    """A response kept only in memory (WebSocket `store: false`): what a continuation of it needs."""

    response: ResponseObject
    items: tuple[Item, ...]


@dataclass(slots=True)
class Prepared:
    """A request that passed every check: its response as created, its generation plan and the items it adds."""

    response: ResponseObject
    plan: Plan
    items: tuple[Item, ...]
    tenant: str
    # The whole conversation this turn continues (history + new input), for in-memory continuations.
    history: tuple[Item, ...] = ()
    # What an interrupted run is stored as: a client that went away leaves it incomplete, a cancel cancelled.
    on_interrupt: Status = Status.INCOMPLETE
    # Sub-second creation time: retention removes the oldest first, and many responses share a second.
    created_at: float = field(default_factory=time.time)
    # Set when the model may search: what re-rendering the turn after a search needs.
    search: SearchTurn | None = None


def _check(req: ResponseRequest, tools: tuple[ToolSpec, ...], limits: Limits) -> None:
    """The size limits, then the tools and output format: cheap refusals before anything is loaded or rendered."""
    check_request(req, limits)
    check_tools(tools, req.tool_choice)
    check_output_format(req.text)


def _decoded(chain: list[ChainLink]) -> list[Item]:
    items: list[Item] = []
    for link in chain:
        items.extend(decode_items(link.input_items))
        items.extend(decode_items(link.output_items))
    return items


class Responder:
    """Runs create-response requests against one engine and one store."""

    def __init__(
        self, engine: Engine, store: Store, config: ServiceConfig, tenants: Tenants, limits: Limits | None = None
    ) -> None:
        self.engine = engine
        self.store = store
        self.config = config
        self.tenants = tenants
        self.limits = limits or Limits()
        # CPU-heavy preparation (size and schema checks, decoding history, rendering, tokenizing) runs in worker
        # threads, a few at a time, so one large request never stalls the streams on the event loop.
        self._cpu = anyio.CapacityLimiter(2)
        self._tool_parser = lookup(TOOL_PARSERS, config.tool_parser, "tool-call")
        self._reasoning_parser = (
            lookup(REASONING_PARSERS, config.reasoning_parser, "reasoning") if config.reasoning_parser else None
        )
        tok = engine.tokenizer
        template = ChatTemplate(tok.chat_template, tok.bos_token, tok.eos_token)
        self.prompts = PromptBuilder(template, tok, self._tool_parser.call_format, engine.info.max_model_len)
        self.web_search = (
            WebSearch(config.web_search, engine, self.prompts, self._tool_parser, self._reasoning_parser)
            if config.web_search
            else None
        )

    async def prepare(self, req: ResponseRequest, local: Mapping[str, Conversation] | None = None) -> Prepared:
        """Check everything that can fail before generation starts; raise APIError subclasses.

        `local` holds responses a connection kept in memory; `previous_response_id` is looked up there first.
        """
        search = search_tools(req, self.config.web_search)
        tools = (*req.tools, *search)
        await anyio.to_thread.run_sync(_check, req, tools, self.limits, limiter=self._cpu)
        if req.background and not req.store:
            raise InvalidRequest("background responses must be stored; drop 'store': false.", param="background")
        history = await self.history(req.previous_response_id, req.tenant, local) if req.previous_response_id else []
        req = replace(req, items=resolve_references(req.items, history))
        offered = offered_tools(tools, req.tool_choice)
        search = tuple(t for t in search if t in offered)  # tool_choice may leave the search out
        # The context check comes first: a client whose prompt cannot fit (Codex's default one) is told that, as
        # `context_length_exceeded`, whatever else its request asks for.
        prompt = await anyio.to_thread.run_sync(self.prompts.build, history, req, offered, limiter=self._cpu)
        check_search_configured(req, self.config.web_search)
        response_id = new_response_id()
        forced = forced_tools(tools, req.tool_choice)
        parser_cls = self._tool_parser
        if forced and parser_cls.call_format is None:
            parser_cls = lookup(TOOL_PARSERS, "json", "tool-call")
        # A forced search is one call: a small model would otherwise repeat searches until max_output_tokens.
        parallel = req.parallel_tool_calls and req.tool_choice.mode != "web_search"
        options = sampling_options(
            replace(req, parallel_tool_calls=parallel), self.engine.info, prompt.room, forced, parser_cls, bool(offered)
        )
        plan = Plan(
            request_id=response_id,
            prompt_token_ids=prompt.token_ids,
            options=options,
            tool_parser=parser_cls(offered) if offered else None,
            reasoning_parser=self._reasoning_parser(prompt.opens_reasoning) if self._reasoning_parser else None,
            forced={t.name: t for t in forced} if forced else None,
            parallel_tool_calls=parallel,
            server_tools=frozenset(t.name for t in search),
            # Prefix-cache blocks are shared within a tenant (chains still hit), never across tenants.
            placement=Placement(
                cache_salt=self.tenants.cache_salt(req.tenant),
                affinity=await self._affinity(req.previous_response_id, req.tenant, local),
            ),
        )
        response = new_response(response_id, req, self.engine.info.name, options)
        turn = SearchTurn(req, prompt.kept, offered) if search else None
        return Prepared(response, plan, req.items, req.tenant, history=(*prompt.kept, *req.items), search=turn)

    async def count_tokens(self, req: ResponseRequest) -> int:
        """How many tokens req's prompt takes (its history included), without the context check."""
        history = await self.history(req.previous_response_id, req.tenant) if req.previous_response_id else []
        items = resolve_references(req.items, history)
        tools = (*req.tools, *search_tools(req, self.config.web_search))
        offered = offered_tools(tools, req.tool_choice)
        count = self.prompts.count
        return await anyio.to_thread.run_sync(count, history, replace(req, items=items), offered, limiter=self._cpu)

    async def _affinity(
        self, response_id: str | None, tenant: str, local: Mapping[str, Conversation] | None
    ) -> str | None:
        # The replica that served the previous turn holds its prefix cache; only routing engines care to know.
        if response_id is None or not self.engine.info.routes_by_affinity:
            return None
        if local is not None and response_id in local:
            return local[response_id].response.replica
        row = await self.store.get(response_id, tenant)
        return replica_of(row.body) if row is not None else None

    async def history(
        self, response_id: str, tenant: str, local: Mapping[str, Conversation] | None = None
    ) -> list[Item]:
        """Every item of the conversation ending at response_id, oldest first; 404 if any link is gone."""
        if local is not None and response_id in local:
            held = local[response_id]
            return [*held.items, *held.response.output]
        try:
            chain = await self.store.chain(response_id, tenant, self.limits.max_chain_bytes)
        except ChainTooLarge as exc:
            raise chain_too_large(exc.total, self.limits) from None
        if chain is None:
            raise NotFound(
                f"No response with id {response_id!r} was found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        if not Status(chain[-1].status).final:
            raise InvalidRequest(
                f"Response {response_id!r} is still {chain[-1].status}; wait for it to finish.",
                param="previous_response_id",
            )
        return await anyio.to_thread.run_sync(_decoded, chain, limiter=self._cpu)

    async def run(self, prepared: Prepared) -> AsyncGenerator[Event, None]:
        """Started, the item events, then Finished (stored first) or Failed; an interruption stores what was made.

        Started comes with the engine's first output, so a request the engine rejects fails before any event.
        """
        response = prepared.response
        output = OutputBuilder(with_logprobs=prepared.plan.options.logprobs is not None, tools=response.tools)
        ended = False
        try:
            async with aclosing(self._turn(prepared, output)) as events:
                started = False
                async for event in events:
                    if not started:
                        started = True
                        yield Started(response)
                    if isinstance(event, Stopped):
                        final = response.finished(output.items, event.finish_reason, event.usage)
                        if event.replica is not None:
                            final = _with_replica(final, event.replica)
                        await self.save(prepared, final)
                        ended = True
                        yield Finished(final)
                        return
                    yield event
        except Exception as exc:
            # The message of errors meant for clients (an engine's death says so); anything else only its kind.
            failed = response.failed(output.snapshot(), reason(exc), getattr(exc, "code", None))
            ended = True
            await self._save_quietly(prepared, failed)
            yield Failed(failed, exc)
        finally:
            if not ended:
                # Keep what was generated, marked as interrupted, even though this task is being cancelled.
                with anyio.CancelScope(shield=True):
                    interrupted = response.finished(output.snapshot(), None, None, status=prepared.on_interrupt)
                    await self._save_quietly(prepared, interrupted)

    def _turn(self, prepared: Prepared, output: OutputBuilder) -> AsyncGenerator[ItemEvent | Stopped, None]:
        """The turn's generation: one, or several around the web searches the model asks for."""
        if prepared.search is not None and self.web_search is not None:
            return self.web_search.turn(prepared.plan, prepared.search, output)
        return generate(self.engine, prepared.plan, output)

    async def complete(self, prepared: Prepared) -> ResponseObject:
        """Run to the end and return the final response: non-streaming is this fold over the same events."""
        async with aclosing(self.run(prepared)) as events:
            async for event in events:
                if isinstance(event, Finished):
                    return event.response
                if isinstance(event, Failed):
                    raise event.error
        raise RuntimeError("run() ended without Finished or Failed")  # pragma: no cover - run() always ends so

    async def save(self, prepared: Prepared, response: ResponseObject) -> None:
        """Write the response in one transaction (inserting it, or finishing a queued row); a no-op unless stored."""
        if not response.store:
            return
        row = self.row(prepared, response)
        if response.background:
            if not await self.store.finish(row):
                log.warning("response %s was already final (expired, or cancelled); kept as it was", row.id)
        else:
            await self.store.insert(row)

    async def _save_quietly(self, prepared: Prepared, response: ResponseObject) -> None:
        try:
            await self.save(prepared, response)
        except Exception:
            log.exception("could not store response %s", response.id)

    @staticmethod
    def row(prepared: Prepared, response: ResponseObject) -> StoredResponse:
        """The store row for this response as it stands."""
        return StoredResponse(
            id=response.id,
            tenant=prepared.tenant,
            previous_response_id=response.previous_response_id,
            status=str(response.status),
            created_at=prepared.created_at,
            updated_at=time.time(),
            input_items=encode_items(prepared.items),
            output_items=encode_items(response.output),
            body=encode_response(response),
        )


def resolve_references(items: tuple[Item, ...], history: list[Item]) -> tuple[Item, ...]:
    """Input items with each item_reference replaced by the conversation item it names; 400 if none does."""
    if not any(isinstance(i, ItemReference) for i in items):
        return items
    known = {item_id: i for i in history if (item_id := getattr(i, "id", None))}
    resolved: list[Item] = []
    for n, item in enumerate(items):
        if isinstance(item, ItemReference):
            found = known.get(item.id)
            if found is None:
                raise InvalidRequest(
                    f"No item with id {item.id!r} in the conversation this request continues; an item_reference "
                    "can only name an item of the previous_response_id chain.",
                    param=f"input[{n}]",
                )
            item = found
        resolved.append(item)
    return tuple(resolved)


def _with_replica(response: ResponseObject, replica: str) -> ResponseObject:
    return msgspec.structs.replace(response, replica=replica)
