"""The create-response body (the HTTP edge only) and its translation into the pipeline's request."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator

from vresponses.api.input_schema import (
    WEB_SEARCH_TYPES,
    CompactionIn,
    ContentPart,
    CustomToolCallIn,
    CustomToolCallOutputIn,
    FunctionCallIn,
    FunctionCallOutputIn,
    InputItem,
    ItemReferenceIn,
    MessageIn,
    ReasoningIn,
    Strict,
    ToolChoiceIn,
    ToolIn,
    WebSearchCallIn,
)
from vresponses.errors import InvalidRequest
from vresponses.parsers.base import ToolSpec
from vresponses.pipeline.items import (
    Compaction,
    FunctionCall,
    FunctionCallOutput,
    Item,
    ItemReference,
    Message,
    Reasoning,
    Source,
    ToolCall,
    WebSearchCall,
    custom_arguments,
    new_id,
)
from vresponses.pipeline.request import ReasoningOptions, ResponseRequest, TextFormat, ToolChoice
from vresponses.pipeline.sealed import unseal
from vresponses.pipeline.tools import EMPTY_PARAMETERS

Key = Annotated[str, StringConstraints(max_length=64)]
Value = Annotated[str, StringConstraints(max_length=512)]
INCLUDABLE = (
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
    "web_search_call.action.sources",
    "web_search_call.results",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "file_search_call.results",
    "code_interpreter_call.outputs",
)
# The custom (freeform) tool's single argument when it is offered to the model as a function.
CUSTOM_INPUT = {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}


class StreamOptions(Strict):
    include_usage: bool | None = None
    # Accepted for OpenAI clients; this server pads nothing (its streams are on your own network).
    include_obfuscation: bool | None = None


class FormatIn(Strict):
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextIn(Strict):
    format: FormatIn | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ReasoningParamIn(Strict):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


class CreateResponse(Strict):
    """The create-response body: the Gradient reference's parameters plus OpenAI's Responses parameters."""

    input: str | list[InputItem]
    model: str
    instructions: str | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=0)
    metadata: dict[Key, Value] | None = Field(default=None, max_length=16)
    modalities: list[Literal["text"]] | None = None
    parallel_tool_calls: bool | None = None
    stop: str | list[str] | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    tool_choice: Literal["none", "auto", "required"] | ToolChoiceIn | None = None
    tools: list[ToolIn] | None = None
    top_p: float | None = Field(default=None, ge=0, le=1)
    user: str | None = None
    # Extensions to the Gradient reference, as in OpenAI's Responses API.
    store: bool | None = None
    previous_response_id: str | None = None
    background: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    text: TextIn | None = None
    reasoning: ReasoningParamIn | None = None
    truncation: Literal["auto", "disabled"] | None = None
    max_tool_calls: int | None = Field(default=None, ge=1)
    include: list[str] | None = None
    prompt_cache_key: str | None = Field(default=None, max_length=1024)
    safety_identifier: str | None = Field(default=None, max_length=1024)
    service_tier: Literal["auto", "default", "flex", "priority", "scale"] | None = None
    # Sent by some OpenAI clients (Codex); accepted and not used.
    client_metadata: dict[str, Any] | None = None

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences are allowed")
        return value

    @field_validator("temperature", "top_p", "presence_penalty", "frequency_penalty")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and value != value:
            raise ValueError("must be a number")
        return value

    @field_validator("include")
    @classmethod
    def _include(cls, value: list[str] | None) -> list[str] | None:
        for entry in value or ():
            if entry not in INCLUDABLE:
                raise ValueError(f"{entry!r} is not something a response can include")
        return value


def to_request(body: CreateResponse, tenant: str) -> ResponseRequest:
    """Translate the wire model into the pipeline's request."""
    if isinstance(body.input, str):
        items: tuple[Item, ...] = (Message(role="user", content=body.input),)
    else:
        items = tuple(_item(i, f"input[{n}]") for n, i in enumerate(body.input))
    if not items:
        raise InvalidRequest("'input' must hold at least one item.", param="input")
    tools, builtin = _tools(body.tools or [])
    if body.max_output_tokens is not None and body.max_tokens is not None and body.max_output_tokens != body.max_tokens:
        raise InvalidRequest("Give max_output_tokens or its alias max_tokens, not both.", param="max_tokens")
    stop = body.stop if isinstance(body.stop, list) else [body.stop] if body.stop else []
    if body.stream_options is not None and not body.stream:
        raise InvalidRequest("stream_options is only allowed with 'stream': true.", param="stream_options")
    if body.background and body.stream:
        raise InvalidRequest("background responses cannot be streamed; poll GET /v1/responses/{id}.", param="stream")
    fmt = body.text.format if body.text is not None else None
    reasoning = body.reasoning or ReasoningParamIn()
    return ResponseRequest(
        model=body.model,
        items=items,
        instructions=body.instructions,
        tools=tools,
        tool_choice=_tool_choice(body.tool_choice, bool(tools or builtin)),
        parallel_tool_calls=True if body.parallel_tool_calls is None else body.parallel_tool_calls,
        temperature=body.temperature,
        top_p=body.top_p,
        presence_penalty=body.presence_penalty,
        frequency_penalty=body.frequency_penalty,
        max_output_tokens=body.max_output_tokens if body.max_output_tokens is not None else body.max_tokens,
        stop=tuple(s for s in stop if s),  # vLLM rejects "", which can never match anyway
        top_logprobs=body.top_logprobs,
        stream=bool(body.stream),
        include_usage=bool(body.stream_options and body.stream_options.include_usage),
        metadata=body.metadata,
        user=body.user,
        store=True if body.store is None else body.store,
        background=bool(body.background),
        previous_response_id=body.previous_response_id,
        tenant=tenant,
        text=TextFormat(fmt.type, fmt.name, fmt.schema_, fmt.description, fmt.strict) if fmt else TextFormat(),
        verbosity=body.text.verbosity if body.text is not None else None,
        reasoning=ReasoningOptions(reasoning.effort, reasoning.summary or reasoning.generate_summary),
        truncation=body.truncation or "disabled",
        max_tool_calls=body.max_tool_calls,
        include=tuple(body.include or ()),
        prompt_cache_key=body.prompt_cache_key,
        safety_identifier=body.safety_identifier,
        service_tier=body.service_tier,
        builtin_tools=builtin,
    )


def _tools(tools: list[ToolIn], namespace: str | None = None) -> tuple[tuple[ToolSpec, ...], tuple[str, ...]]:
    """Function tools (namespaces flattened, custom tools as one-string functions) and built-in tool types."""
    specs: list[ToolSpec] = []
    builtin: list[str] = []
    for tool in tools:
        if tool.type in WEB_SEARCH_TYPES:
            if "web_search" not in builtin:
                builtin.append("web_search")
        elif tool.type == "namespace":
            specs.extend(_tools(tool.tools or [], tool.name)[0])
        else:
            specs.append(_function(tool, namespace))
    return tuple(specs), tuple(builtin)


def _function(tool: ToolIn, namespace: str | None) -> ToolSpec:
    chat = tool.function
    name = tool.name or (chat.name if chat else None) or ""
    description = tool.description or (chat.description if chat else None)
    if tool.type == "custom":
        return ToolSpec(name, description, dict(CUSTOM_INPUT), custom=True, namespace=namespace)
    parameters = tool.parameters if tool.parameters is not None else chat.parameters if chat else None
    return ToolSpec(name, description, parameters or dict(EMPTY_PARAMETERS), namespace=namespace)


def _tool_choice(choice: str | ToolChoiceIn | None, have_tools: bool) -> ToolChoice:
    if choice is None:
        return ToolChoice("auto" if have_tools else "none")
    if isinstance(choice, str):
        return ToolChoice(choice)
    if choice.type in WEB_SEARCH_TYPES:
        return ToolChoice("web_search", name=choice.type)  # the type the client named, to echo
    if choice.type == "allowed_tools":
        # A built-in web search among the allowed tools is allowed by the name the model calls it by.
        names = tuple(n for t in choice.tools or () if (n := "web_search" if t.type in WEB_SEARCH_TYPES else t.name))
        return ToolChoice("allowed_tools", allowed=names, require=choice.mode == "required")
    return ToolChoice("function", choice.function.name if choice.function else choice.name)


def _text(content: str | list[ContentPart] | None) -> str:
    if isinstance(content, list):
        return "".join(p.value for p in content)
    return content or ""


def _item(item: Any, param: str) -> Item:
    if isinstance(item, MessageIn):
        calls = tuple(ToolCall(c.id, c.function.name, c.function.arguments) for c in item.tool_calls or ())
        return Message(role=item.role, content=_text(item.content), tool_calls=calls, tool_call_id=item.tool_call_id)
    if isinstance(item, FunctionCallIn):
        return FunctionCall(item.call_id, item.name, item.arguments, id=item.id, namespace=item.namespace)
    if isinstance(item, CustomToolCallIn):
        # Inside, a freeform call is the one-string function call the model was offered.
        arguments = custom_arguments(item.input)
        return FunctionCall(item.call_id, item.name, arguments, id=item.id, custom=True, namespace=item.namespace)
    if isinstance(item, FunctionCallOutputIn | CustomToolCallOutputIn):
        output = item.output if isinstance(item.output, str) else _text(item.output)
        return FunctionCallOutput(item.call_id, output, id=item.id, custom=isinstance(item, CustomToolCallOutputIn))
    if isinstance(item, ReasoningIn):
        text = "".join(c.text or "" for c in item.content or ())
        if not text and item.encrypted_content:
            text = unseal(item.encrypted_content, f"{param}.encrypted_content")
        summary = tuple(s.text for s in item.summary or () if s.text)
        return Reasoning(id=item.id or "", text=text, encrypted_content=item.encrypted_content, summary=summary)
    if isinstance(item, CompactionIn):
        compacted = unseal(item.encrypted_content, f"{param}.encrypted_content")
        return Compaction(id=item.id or new_id("cmp"), summary=compacted)
    if isinstance(item, WebSearchCallIn):
        query = item.action.query or "" if item.action else ""
        found = item.action.sources or [] if item.action else []
        sources = tuple(Source(s.url, s.title or "") for s in found)
        return WebSearchCall(id=item.id, status=item.status or "completed", query=query, sources=sources)
    assert isinstance(item, ItemReferenceIn)
    return ItemReference(id=item.id)
