"""Pydantic wire models of the create-response request (the HTTP edge only) and their translation inward."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    field_validator,
    model_validator,
)

from vresponses.errors import InvalidRequest
from vresponses.parsers.base import ToolSpec
from vresponses.pipeline.items import FunctionCall, FunctionCallOutput, Item, Message, Reasoning, ToolCall
from vresponses.pipeline.request import ResponseRequest, ToolChoice
from vresponses.pipeline.tools import EMPTY_PARAMETERS

_TEXT_PARTS = ("input_text", "output_text", "text")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Open(BaseModel):
    # Item shapes from other clients carry extra fields (ids, annotations); ignore rather than reject them.
    model_config = ConfigDict(extra="ignore", frozen=True)


class FunctionSpec(_Open):
    name: str
    arguments: str


class ToolCallIn(_Open):
    id: str
    type: Literal["function"] = "function"
    function: FunctionSpec


class ContentPart(_Open):
    type: str = "input_text"
    text: str | None = None


class MessageIn(_Open):
    type: Literal["message"] | None = None
    role: Literal["user", "assistant", "system", "developer", "tool"] = "user"
    content: str | list[ContentPart] | None = None
    tool_call_id: str | None = None
    tool_calls: list[ToolCallIn] | None = None

    @model_validator(mode="after")
    def _check(self) -> MessageIn:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a message with role 'tool' needs 'tool_call_id'")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages may carry 'tool_calls'")
        if self.content is None and not self.tool_calls:
            raise ValueError("a message needs 'content'")
        for part in self.content if isinstance(self.content, list) else ():
            if part.type not in _TEXT_PARTS or part.text is None:
                raise ValueError(f"content part type {part.type!r} is not supported: this model takes text only")
        return self


class ReasoningContent(_Open):
    type: Literal["reasoning_text"] = "reasoning_text"
    text: str


class TypedItemIn(_Open):
    type: Literal["function_call", "function_call_output", "reasoning"]
    id: str | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None
    content: list[ReasoningContent] | None = None
    summary: list[Any] | None = None
    encrypted_content: str | None = None
    status: str | None = None

    @model_validator(mode="after")
    def _check(self) -> TypedItemIn:
        need = {
            "function_call": ("call_id", "name", "arguments"),
            "function_call_output": ("call_id", "output"),
            "reasoning": (),
        }[self.type]
        missing = [f for f in need if getattr(self, f) is None]
        if missing:
            raise ValueError(f"a {self.type} item needs {', '.join(repr(m) for m in missing)}")
        return self


class ToolIn(_Strict):
    type: Literal["function", "web_search", "web_search_2025_08_26"] = "function"
    name: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None

    @model_validator(mode="after")
    def _check(self) -> ToolIn:
        if self.type != "function":
            raise ValueError(f"tool type {self.type!r} is not available on this server; only 'function' is")
        if not self.name:
            raise ValueError("a function tool needs 'name'")
        return self


class NamedFunction(_Strict):
    name: str


class NamedToolChoice(_Strict):
    type: Literal["function"]
    function: NamedFunction | None = None
    name: str | None = None  # The Responses-API form puts the name at the top level.

    @model_validator(mode="after")
    def _check(self) -> NamedToolChoice:
        if not (self.function or self.name):
            raise ValueError("a named tool_choice needs function.name")
        return self


class StreamOptions(_Strict):
    include_usage: bool | None = None


def _item_kind(value: Any) -> str:
    # Route each item by `type` so validation errors name the fields of the right item shape.
    kind = value.get("type", "message") if isinstance(value, dict) else getattr(value, "type", "message")
    return "typed" if kind in ("function_call", "function_call_output", "reasoning") else "message"


InputItem = Annotated[
    Annotated[MessageIn, Tag("message")] | Annotated[TypedItemIn, Tag("typed")], Discriminator(_item_kind)
]

Key = Annotated[str, StringConstraints(max_length=64)]
Value = Annotated[str, StringConstraints(max_length=512)]


class CreateResponse(_Strict):
    """The create-response body: the seed's parameters plus documented extensions."""

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
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    tools: list[ToolIn] | None = None
    top_p: float | None = Field(default=None, ge=0, le=1)
    user: str | None = None
    # Extensions (as in OpenAI's Responses API).
    store: bool | None = None
    previous_response_id: str | None = None
    background: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences are allowed")
        return value

    @field_validator("temperature", "top_p")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and value != value:
            raise ValueError("must be a number")
        return value


def to_request(body: CreateResponse, tenant: str) -> ResponseRequest:
    """Translate the wire model into the pipeline's request."""
    if isinstance(body.input, str):
        items: tuple[Item, ...] = (Message(role="user", content=body.input),)
    else:
        items = tuple(_item(i) for i in body.input)
    if not items:
        raise InvalidRequest("'input' must hold at least one item.", param="input")
    tools = tuple(
        ToolSpec(name=t.name or "", description=t.description, parameters=t.parameters or dict(EMPTY_PARAMETERS))
        for t in body.tools or ()
    )
    choice = body.tool_choice
    if choice is None:
        tool_choice = ToolChoice("auto" if tools else "none")
    elif isinstance(choice, str):
        tool_choice = ToolChoice(choice)
    else:
        tool_choice = ToolChoice("function", choice.function.name if choice.function else choice.name)
    if body.max_output_tokens is not None and body.max_tokens is not None and body.max_output_tokens != body.max_tokens:
        raise InvalidRequest("Give max_output_tokens or its alias max_tokens, not both.", param="max_tokens")
    stop = body.stop if isinstance(body.stop, list) else [body.stop] if body.stop else []
    if body.stream_options is not None and not body.stream:
        raise InvalidRequest("stream_options is only allowed with 'stream': true.", param="stream_options")
    if body.background and body.stream:
        raise InvalidRequest("background responses cannot be streamed; poll GET /v1/responses/{id}.", param="stream")
    return ResponseRequest(
        model=body.model,
        items=items,
        instructions=body.instructions,
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=True if body.parallel_tool_calls is None else body.parallel_tool_calls,
        temperature=body.temperature,
        top_p=body.top_p,
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
    )


def _item(item: MessageIn | TypedItemIn) -> Item:
    if isinstance(item, MessageIn):
        parts = item.content if isinstance(item.content, list) else None
        content = "".join(p.text or "" for p in parts) if parts is not None else str(item.content or "")
        calls = tuple(ToolCall(c.id, c.function.name, c.function.arguments) for c in item.tool_calls or ())
        return Message(role=item.role, content=content, tool_calls=calls, tool_call_id=item.tool_call_id)
    if item.type == "function_call":
        return FunctionCall(
            call_id=item.call_id or "", name=item.name or "", arguments=item.arguments or "", id=item.id
        )
    if item.type == "function_call_output":
        return FunctionCallOutput(call_id=item.call_id or "", output=item.output or "", id=item.id)
    text = "".join(c.text for c in item.content or ())
    return Reasoning(id=item.id or "", text=text, encrypted_content=item.encrypted_content)
