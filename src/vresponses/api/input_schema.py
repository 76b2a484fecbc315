"""Pydantic wire models of input items, content parts and tools (the HTTP edge only), in both dialects' forms."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

# Part types that carry text a text-only model can read.
TEXT_PARTS = ("input_text", "output_text", "text", "summary_text", "reasoning_text")
# Part types of other modalities: named in the 400 so the client knows what this model cannot take.
MEDIA_PARTS = {"input_image": "image", "input_file": "file", "input_audio": "audio", "input_video": "video"}
WEB_SEARCH_TYPES = ("web_search", "web_search_2025_08_26", "web_search_preview", "web_search_preview_2025_03_11")


class Strict(BaseModel):
    """Unknown fields are errors; no type coercion (a string is never a number)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Open(BaseModel):
    """Item shapes from other clients carry extra fields (ids, annotations, phase): ignore them, still strictly."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


class ContentPart(Open):
    type: str | None = None
    text: str | None = None
    refusal: str | None = None

    @model_validator(mode="after")
    def _check(self) -> ContentPart:
        if self.type is None:
            raise ValueError("a content part needs 'type' (e.g. 'input_text' with 'text')")
        if self.type in MEDIA_PARTS:
            raise ValueError(f"this model takes text only: it has no {MEDIA_PARTS[self.type]} input ({self.type!r})")
        if self.type == "refusal":
            if self.refusal is None:
                raise ValueError("a refusal part needs 'refusal'")
        elif self.type not in TEXT_PARTS:
            raise ValueError(f"content part type {self.type!r} is not supported; use 'input_text'")
        elif self.text is None:
            raise ValueError(f"a {self.type!r} part needs 'text'")
        return self

    @property
    def value(self) -> str:
        """The part's text."""
        return self.text if self.text is not None else self.refusal or ""


class FunctionSpec(Open):
    name: str
    arguments: str


class ToolCallIn(Open):
    id: str
    type: Literal["function"] = "function"
    function: FunctionSpec


class MessageIn(Open):
    type: Literal["message"] | None = None
    role: Literal["user", "assistant", "system", "developer", "tool"] = "user"
    content: str | list[ContentPart] | None = None
    tool_call_id: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    id: str | None = None

    @model_validator(mode="after")
    def _check(self) -> MessageIn:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a message with role 'tool' needs 'tool_call_id'")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages may carry 'tool_calls'")
        if self.content is None and not self.tool_calls:
            raise ValueError("a message needs 'content'")
        return self


class ReasoningContent(Open):
    type: Literal["reasoning_text", "summary_text", "text"] = "reasoning_text"
    text: str | None = None


class FunctionCallIn(Open):
    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str
    id: str | None = None
    status: str | None = None
    namespace: str | None = None


class CustomToolCallIn(Open):
    """A call to a freeform (`custom`) tool, as a client hands it back: its input is free text."""

    type: Literal["custom_tool_call"]
    call_id: str
    name: str
    input: str
    id: str | None = None
    status: str | None = None
    namespace: str | None = None


class FunctionCallOutputIn(Open):
    type: Literal["function_call_output"]
    call_id: str
    output: str | list[ContentPart]
    id: str | None = None
    status: str | None = None


class CustomToolCallOutputIn(Open):
    type: Literal["custom_tool_call_output"]
    call_id: str
    output: str | list[ContentPart]
    id: str | None = None
    status: str | None = None


class ReasoningIn(Open):
    type: Literal["reasoning"]
    id: str | None = None
    content: list[ReasoningContent] | None = None
    summary: list[ReasoningContent] | None = None
    encrypted_content: str | None = None
    status: str | None = None


class ItemReferenceIn(Open):
    type: Literal["item_reference"] | None = None
    id: str


class CompactionIn(Open):
    type: Literal["compaction"]
    id: str | None = None
    encrypted_content: str = Field(max_length=10 * 1024 * 1024)


class SearchSourceIn(Open):
    url: str
    title: str | None = None


class SearchActionIn(Open):
    query: str | None = None
    sources: list[SearchSourceIn] | None = None


class WebSearchCallIn(Open):
    type: Literal["web_search_call"]
    id: str
    status: str | None = None
    action: SearchActionIn | None = None


class UnknownItem(Open):
    type: str

    @model_validator(mode="after")
    def _check(self) -> UnknownItem:
        raise ValueError(f"input item type {self.type!r} is not supported by this server")


_TYPED = {
    "function_call": "function_call",
    "function_call_output": "function_call_output",
    "custom_tool_call": "custom_tool_call",
    "custom_tool_call_output": "custom_tool_call_output",
    "reasoning": "reasoning",
    "item_reference": "item_reference",
    "compaction": "compaction",
    "web_search_call": "web_search_call",
    "message": "message",
}


def _item_kind(value: Any) -> str:
    # Route each item by `type` so validation errors name the fields of the right item shape.
    if not isinstance(value, dict):
        return "message"
    kind = value.get("type")
    if kind is None:
        return "item_reference" if set(value) == {"id"} else "message"
    return _TYPED.get(kind, "unknown") if isinstance(kind, str) else "unknown"


InputItem = Annotated[
    Annotated[MessageIn, Tag("message")]
    | Annotated[FunctionCallIn, Tag("function_call")]
    | Annotated[FunctionCallOutputIn, Tag("function_call_output")]
    | Annotated[CustomToolCallIn, Tag("custom_tool_call")]
    | Annotated[CustomToolCallOutputIn, Tag("custom_tool_call_output")]
    | Annotated[ReasoningIn, Tag("reasoning")]
    | Annotated[ItemReferenceIn, Tag("item_reference")]
    | Annotated[CompactionIn, Tag("compaction")]
    | Annotated[WebSearchCallIn, Tag("web_search_call")]
    | Annotated[UnknownItem, Tag("unknown")],
    Discriminator(_item_kind),
]


class ChatFunction(Open):
    name: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolIn(Open):
    """A tool as clients send it: Responses-form functions (or chat-form), web search, and client tool kinds
    that are functions by another name (Codex's `namespace` of functions, freeform `custom` tools)."""

    type: str = "function"
    name: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None
    function: ChatFunction | None = None
    tools: list[ToolIn] | None = None
    format: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _check(self) -> ToolIn:
        if self.type in WEB_SEARCH_TYPES:
            return self
        if self.type == "namespace":
            if not self.tools:
                raise ValueError("a namespace tool needs 'tools'")
            return self
        if self.type not in ("function", "custom"):
            raise ValueError(f"tool type {self.type!r} is not available on this server; use 'function'")
        if not (self.name or (self.function and self.function.name)):
            raise ValueError(f"a {self.type} tool needs 'name'")
        return self


class NamedFunction(Strict):
    name: str


class AllowedTool(Open):
    type: str = "function"
    name: str | None = None


class ToolChoiceIn(Strict):
    """`{"type": "function", "name"}` (or chat-form `function.name`), `allowed_tools`, or a built-in tool type."""

    type: str
    function: NamedFunction | None = None
    name: str | None = None
    mode: Literal["auto", "required"] | None = None
    tools: list[AllowedTool] | None = None

    @model_validator(mode="after")
    def _check(self) -> ToolChoiceIn:
        if self.type in ("function", "custom"):
            if not (self.function or self.name):
                raise ValueError("a named tool_choice needs 'name'")
        elif self.type == "allowed_tools":
            if self.mode is None or self.tools is None:
                raise ValueError("an allowed_tools tool_choice needs 'mode' and 'tools'")
        elif self.type not in WEB_SEARCH_TYPES:
            raise ValueError(f"tool_choice type {self.type!r} is not available on this server")
        return self


ToolIn.model_rebuild()
