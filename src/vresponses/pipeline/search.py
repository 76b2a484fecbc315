"""Server-run web search: the tool the model is offered, and the turn that runs its searches between generations.

A turn that may search is a loop: generate; if the model called `web_search` (and no client function), run the
search, add the call and its results to the conversation, re-render and generate again with what is left of the
output budget. Searches are bounded per response; a failed or hung search is a `failed` call the model is told
about, never an error of the response.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field, replace

import msgspec

from vresponses.engines.base import Engine
from vresponses.errors import ContextTooLong, InvalidRequest
from vresponses.parsers.base import ReasoningParser, ToolParser, ToolSpec
from vresponses.pipeline.citations import citations
from vresponses.pipeline.events import ItemDone, ItemEvent, ItemStarted, SearchUpdate, Usage
from vresponses.pipeline.generate import Plan, Stopped, generate
from vresponses.pipeline.items import Item, Message, Source, WebSearchCall, new_id
from vresponses.pipeline.output import OutputBuilder
from vresponses.pipeline.prompt import PromptBuilder
from vresponses.pipeline.render import SEARCH_TOOL
from vresponses.pipeline.request import ResponseRequest
from vresponses.pipeline.sampling import sampling_options
from vresponses.websearch import (
    DEFAULT_TIMEOUT,
    Limits,
    SearchError,
    SearchProvider,
    format_failure,
    format_results,
    run_search,
)

log = logging.getLogger(__name__)

SEARCH_SPEC = ToolSpec(
    name=SEARCH_TOOL,
    description=("Search the web for current or specific information. Returns numbered results; cite them like [1]."),
    parameters={
        "type": "object",
        "properties": {"query": {"type": "string", "description": "A few search keywords.", "maxLength": 200}},
        "required": ["query"],
        "additionalProperties": False,
    },
)
NOT_CONFIGURED = (
    "Web search is not configured on this server: start it with --web-search PROVIDER "
    "(searxng=URL, ddgs, brave, tavily or local=PATH)."
)
# Told with the results of the last search a response may make, so the model answers instead of asking again.
LAST_SEARCH = "\n\nThat was the last web search allowed for this answer: answer now, from these results."
# Tokens kept free around inserted results: the tool message's framing, and a minimum for the answer itself.
FRAMING_TOKENS = 64
ANSWER_TOKENS = 256


@dataclass(frozen=True, slots=True)
class SearchConfig:
    """The server's web search, chosen at start: the provider and the bounds of every response's searches."""

    provider: SearchProvider
    max_searches: int = 3
    timeout: float = DEFAULT_TIMEOUT
    limits: Limits = field(default_factory=Limits)
    # The most tokens one search's results may add to the prompt (the context may allow fewer).
    max_result_tokens: int = 2048


@dataclass(frozen=True, slots=True)
class SearchTurn:
    """What re-rendering a turn after a search needs: the request (references resolved), kept history, tools shown."""

    req: ResponseRequest
    kept: tuple[Item, ...]
    tools: tuple[ToolSpec, ...]


def asks_for_search(req: ResponseRequest) -> bool:
    """Whether the request offers or forces the built-in web search."""
    return bool(req.builtin_tools) or req.tool_choice.mode == "web_search"


def check_search_configured(req: ResponseRequest, config: SearchConfig | None) -> None:
    """400 when the request asks for web search and this server has no provider (checked after the context)."""
    if config is None and asks_for_search(req):
        raise InvalidRequest(NOT_CONFIGURED, param="tools")


def search_tools(req: ResponseRequest, config: SearchConfig | None) -> tuple[ToolSpec, ...]:
    """The server tool the request adds to its functions: the search tool when it asks for web search (and a
    provider is configured), else none; 400 when one of its own functions takes the tool's name.
    """
    if config is None or not asks_for_search(req):
        return ()
    for tool in req.tools:
        if tool.name == SEARCH_TOOL:
            raise InvalidRequest(
                f"{SEARCH_TOOL!r} is the name of the built-in web search tool; give your function another name.",
                param="tools",
            )
    return (SEARCH_SPEC,)


def _plus(a: Usage, b: Usage) -> Usage:
    return Usage(
        a.input_tokens + b.input_tokens,
        a.cached_tokens + b.cached_tokens,
        a.output_tokens + b.output_tokens,
        a.reasoning_tokens + b.reasoning_tokens,
        a.tool_output_tokens + b.tool_output_tokens,
    )


def _query(arguments: str) -> str | None:
    """The query of a search call's arguments, or None when they are not `{"query": string}`."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return None
    query = value.get("query") if isinstance(value, dict) else None
    return query if isinstance(query, str) else None


class WebSearch:
    """Runs turns in which the model may search, with one engine, prompt builder and parser set."""

    def __init__(
        self,
        config: SearchConfig,
        engine: Engine,
        prompts: PromptBuilder,
        tool_parser: type[ToolParser],
        reasoning_parser: type[ReasoningParser] | None,
    ) -> None:
        self.config = config
        self.engine = engine
        self.prompts = prompts
        self._tool_parser = tool_parser
        self._reasoning_parser = reasoning_parser

    def _tokens(self, text: str) -> int:
        return len(self.engine.tokenizer.encode(text, add_special_tokens=False))

    async def turn(
        self, plan: Plan, turn: SearchTurn, output: OutputBuilder
    ) -> AsyncGenerator[ItemEvent | Stopped, None]:
        """Item events of every generation and search, then one Stopped with the usage of them all."""
        budget = plan.options.max_tokens
        limit = self.config.max_searches
        if turn.req.max_tool_calls is not None:
            limit = min(limit, turn.req.max_tool_calls)
        usage, searches, step, first_id = Usage(0, 0, 0), 0, 0, plan.request_id
        sources: tuple[Source, ...] = ()  # the latest results, which [n] in the answer refers to
        while True:
            stopped: Stopped | None = None
            async with aclosing(generate(self.engine, plan, output)) as events:
                async for event in events:
                    if isinstance(event, Stopped):
                        stopped = event
                        continue
                    if sources and isinstance(event, ItemDone) and isinstance(event.item, Message):
                        event = self._cited(event, event.item, sources, output)
                    yield event
            assert stopped is not None, "generate() always ends with Stopped"
            usage = _plus(usage, stopped.usage)
            finish = stopped.finish_reason
            # A generation cut by max_output_tokens or aborted may hold a half-made call: no search runs.
            calls = stopped.server_calls if finish in ("stop", "tool_calls") else ()
            ran = False
            spent = len(plan.prompt_token_ids) + stopped.usage.output_tokens
            for _, arguments in calls:
                if searches >= limit:
                    log.info("ignoring a web search beyond this response's limit of %d", limit)
                    continue
                searches += 1
                answer = max(0, min(budget - usage.output_tokens, ANSWER_TOKENS))
                room = self.prompts.context - spent - FRAMING_TOKENS - answer
                async for event in self._search(arguments, output, room, last=searches >= limit):
                    if isinstance(event, ItemDone) and isinstance(event.item, WebSearchCall):
                        tokens = self._tokens(event.item.results)
                        spent += tokens + FRAMING_TOKENS
                        usage = replace(usage, tool_output_tokens=usage.tool_output_tokens + tokens)
                        sources = event.item.sources or sources
                    yield event
                ran = True
            if not ran or finish == "tool_calls":
                # Nothing to continue from, or client calls end the turn (their results come from the client).
                yield Stopped(finish, usage, stopped.replica)
                return
            step += 1
            next_plan = self._next(plan, turn, output, f"{first_id}-s{step}", budget - usage.output_tokens)
            if next_plan is None:
                yield Stopped("length", usage, stopped.replica)
                return
            plan = next_plan

    def _next(
        self, plan: Plan, turn: SearchTurn, output: OutputBuilder, request_id: str, remaining: int
    ) -> Plan | None:
        """The plan of the generation after a search, or None when no output budget or context is left."""
        if remaining <= 0:
            return None
        req = replace(turn.req, items=(*turn.req.items, *output.items))
        try:
            prompt = self.prompts.build(turn.kept, req, turn.tools)
        except ContextTooLong:
            return None
        room = min(prompt.room, remaining)
        return Plan(
            request_id=request_id,
            prompt_token_ids=prompt.token_ids,
            options=sampling_options(turn.req, self.engine.info, room, (), self._tool_parser, True),
            tool_parser=self._tool_parser(turn.tools),
            reasoning_parser=self._reasoning_parser(prompt.opens_reasoning) if self._reasoning_parser else None,
            placement=plan.placement,
            parallel_tool_calls=turn.req.parallel_tool_calls,
            server_tools=plan.server_tools,
        )

    async def _search(
        self, arguments: str, output: OutputBuilder, room: int, last: bool
    ) -> AsyncGenerator[ItemEvent, None]:
        """One search as an output item: started, searching, then completed or failed (with what the model reads)."""
        query = _query(arguments)
        item = WebSearchCall(id=new_id("ws"), status="in_progress", query=query or "")
        index = output.add(item)
        yield ItemStarted(item.id, index, "web_search_call", query=item.query)
        yield SearchUpdate(item.id, index, "in_progress")
        yield SearchUpdate(item.id, index, "searching")
        try:
            item = await self._run(item, query, room, last)
        except BaseException:
            # Cancelled mid-search (the client went away): what is stored says the search never finished.
            output.update(index, msgspec.structs.replace(item, status="incomplete"))
            raise
        output.update(index, item)
        yield SearchUpdate(item.id, index, item.status)
        yield ItemDone(index, item)

    async def _run(self, item: WebSearchCall, query: str | None, room: int, last: bool) -> WebSearchCall:
        if query is None:
            error = SearchError("the web_search call's arguments were not a JSON object with a 'query' string")
            return msgspec.structs.replace(item, status="failed", results=format_failure("", error), error=str(error))
        limits = self.config.limits
        try:
            found = await run_search(
                self.config.provider, query, max_results=limits.max_results, time_limit=self.config.timeout
            )
        except SearchError as exc:
            log.info("web search failed: %s", exc)
            return msgspec.structs.replace(item, status="failed", results=format_failure(query, exc), error=str(exc))
        budget = min(self.config.max_result_tokens, room)
        results = format_results(query, found, limits=limits, fits=lambda text: self._tokens(text) <= budget)
        sources = tuple(Source(r.url, r.title) for r in results.sources)
        text = results.text + (LAST_SEARCH if last else "")
        return msgspec.structs.replace(item, status="completed", sources=sources, results=text)

    @staticmethod
    def _cited(event: ItemDone, message: Message, sources: tuple[Source, ...], output: OutputBuilder) -> ItemDone:
        """The message with url_citation annotations where it cites the latest results (stored so too)."""
        found = citations(message.content, sources)
        if not found:
            return event
        cited = msgspec.structs.replace(message, annotations=found)
        output.update(event.output_index, cited)
        return ItemDone(event.output_index, cited)
