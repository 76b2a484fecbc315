"""Conversation items (+ instructions and tools) -> chat messages -> prompt text -> prompt token ids."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vresponses.engines.base import Tokenizer
from vresponses.errors import InvalidRequest
from vresponses.parsers.base import CallFormat, ToolSpec
from vresponses.pipeline.control import ControlTokens
from vresponses.pipeline.items import (
    Compaction,
    FunctionCall,
    FunctionCallOutput,
    Item,
    Message,
    OutputText,
    Reasoning,
    WebSearchCall,
)
from vresponses.pipeline.template import ChatTemplate, TemplateRenderError

# The documented fallback for templates that ignore `tools`: a Hermes-style block in the system message.
TOOL_PROMPT = (
    "You may call one or more functions to assist with the user query. "
    "Function signatures are given inside <tools></tools> XML tags:\n<tools>\n{tools}\n</tools>\n\n"
    "To call a function, answer with exactly this and nothing else, once per call:\n{example}"
)
# The name the model calls the server's web search by.
SEARCH_TOOL = "web_search"
HERMES = CallFormat(prefix="", begin="<tool_call>\n", end="\n</tool_call>", separator="\n", suffix="")


@dataclass(frozen=True, slots=True)
class Prompt:
    """The rendered prompt: its text, its token ids and whether it leaves the model inside reasoning."""

    text: str
    token_ids: list[int]
    opens_reasoning: bool


@dataclass(slots=True)
class _Turn:
    """One assistant message being assembled from consecutive items; joined once, never by repeated +=."""

    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    # None until a call or message item joins: only then does the message carry a tool_calls list (maybe empty).
    calls: list[dict[str, Any]] | None = None
    has_content: bool = False

    def message(self) -> dict[str, Any]:
        """The chat message: content always, reasoning_content and tool_calls when items gave them."""
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.content)}
        if self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning)
        if self.calls is not None:
            message["tool_calls"] = self.calls
        return message

    def add_text(self, text: str) -> None:
        """Append assistant content."""
        self.content.append(text)
        self.has_content = self.has_content or bool(text)

    def add_calls(self) -> list[dict[str, Any]]:
        """The message's tool_calls list, created when first asked for."""
        if self.calls is None:
            self.calls = []
        return self.calls


def tool_schema(tool: ToolSpec) -> dict[str, Any]:
    """A tool in the chat-template (OpenAI chat) shape."""
    function: dict[str, Any] = {"name": tool.name, "parameters": dict(tool.parameters)}
    if tool.description:
        function["description"] = tool.description
    return {"type": "function", "function": function}


def _arguments(raw: str) -> Any:
    # Templates expect parsed arguments (transformers' convention); keep the string if it is not JSON.
    try:
        return json.loads(raw)
    except ValueError:
        return raw


class Renderer:
    """Turns a conversation into prompt tokens with one model's template, tokenizer and call format."""

    def __init__(self, template: ChatTemplate, tokenizer: Tokenizer, call_format: CallFormat | None) -> None:
        self.template = template
        self.tokenizer = tokenizer
        self.call_format = call_format or HERMES
        self.control = ControlTokens(tokenizer)

    def messages(self, items: Sequence[Item], instructions: str | None) -> list[dict[str, Any]]:
        """Chat messages for the template: consecutive assistant items merge into one assistant message."""
        out: list[dict[str, Any] | _Turn] = []
        if instructions:
            out.append({"role": "system", "content": instructions})
        names: dict[str, str] = {}
        turn: _Turn | None = None
        for item in items:
            if isinstance(item, Reasoning | OutputText | FunctionCall) or (
                isinstance(item, Message) and item.role == "assistant"
            ):
                if turn is None or (isinstance(item, Reasoning) and turn.has_content):
                    turn = _Turn()
                    out.append(turn)
                self._into_assistant(turn, item, names)
                continue
            if isinstance(item, WebSearchCall):
                # A search the server ran: the model's call, then what it read, as for any tool.
                if turn is None:
                    turn = _Turn()
                    out.append(turn)
                names[item.id] = SEARCH_TOOL
                turn.add_calls().append(self._call(item.id, SEARCH_TOOL, json.dumps({"query": item.query})))
                out.append(self._tool_message(item.id, item.results or item.error or "", names, "input"))
                turn = None
                continue
            turn = None
            if isinstance(item, FunctionCallOutput):
                out.append(self._tool_message(item.call_id, item.output, names, "input"))
            elif isinstance(item, Message) and item.role == "tool":
                out.append(self._tool_message(item.tool_call_id or "", item.content, names, "input"))
            elif isinstance(item, Message):
                role = "system" if item.role == "developer" else item.role
                out.append({"role": role, "content": item.content})
            elif isinstance(item, Compaction):
                out.append({"role": "system", "content": f"Summary of the conversation so far:\n{item.summary}"})
        return [m.message() if isinstance(m, _Turn) else m for m in out]

    def _into_assistant(self, turn: _Turn, item: Item, names: dict[str, str]) -> None:
        if isinstance(item, Reasoning):
            turn.reasoning.append(item.text)
            return
        if isinstance(item, OutputText):
            turn.add_text(item.text)
            return
        calls = turn.add_calls()
        if isinstance(item, FunctionCall):
            names[item.call_id] = item.name
            calls.append(self._call(item.call_id, item.name, item.arguments))
            return
        assert isinstance(item, Message)
        turn.add_text(item.content)
        for call in item.tool_calls:
            names[call.id] = call.name
            calls.append(self._call(call.id, call.name, call.arguments))

    @staticmethod
    def _call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
        return {
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": _arguments(arguments)},
        }

    @staticmethod
    def _tool_message(call_id: str, content: str, names: dict[str, str], param: str) -> dict[str, Any]:
        if call_id not in names:
            raise InvalidRequest(
                f"No function call with call_id {call_id!r} precedes this tool output in the conversation.",
                param=param,
            )
        return {"role": "tool", "tool_call_id": call_id, "name": names[call_id], "content": content}

    def render(
        self,
        items: Sequence[Item],
        instructions: str | None,
        tools: Sequence[ToolSpec],
        variables: Mapping[str, Any] | None = None,
    ) -> Prompt:
        """Render and tokenize the conversation; tools the template ignores go into the system message.

        `variables` reach the template as it expects them (e.g. `reasoning_effort`, `enable_thinking`). Client
        text that spells a control token (`<|im_start|>`) is encoded as text, never as that token.
        """
        messages = self.messages(items, instructions)
        schemas = [tool_schema(t) for t in tools] or None

        def text(mark: Callable[[Any], Any]) -> str:
            return self._text(mark(messages), mark(schemas) if schemas else None, variables)

        plain = text(lambda value: value)
        if self.control.spelled(messages) or self.control.spelled(schemas):
            ids = self.control.encode_guarded(plain, text, param="input")
        else:
            ids = list(self.tokenizer.encode(plain, add_special_tokens=False))
        return Prompt(text=plain, token_ids=ids, opens_reasoning=plain.rstrip().endswith("<think>"))

    def _text(
        self,
        messages: list[dict[str, Any]],
        schemas: list[dict[str, Any]] | None,
        variables: Mapping[str, Any] | None,
    ) -> str:
        if schemas and not self.template.supports_tools:
            messages = self._with_tool_prompt(messages, schemas)
        if not self.template.supports_tool_calls:
            messages = [self._flatten_calls(m) for m in messages]
        if not self.template.supports_reasoning:
            messages = [{k: v for k, v in m.items() if k != "reasoning_content"} for m in messages]
        try:
            return self.template.render(
                messages, schemas if self.template.supports_tools else None, variables=variables
            )
        except TemplateRenderError as exc:
            raise InvalidRequest(str(exc), param="input") from exc

    def _with_tool_prompt(self, messages: list[dict[str, Any]], schemas: list[dict[str, Any]]) -> list[dict[str, Any]]:
        fmt = self.call_format
        call = {fmt.name_key: "<function-name>", fmt.args_key: {"<argument>": "<value>"}}
        example = fmt.prefix + fmt.begin + json.dumps(call) + fmt.end + fmt.suffix
        block = TOOL_PROMPT.format(tools="\n".join(json.dumps(s) for s in schemas), example=example)
        if messages and messages[0]["role"] == "system":
            first = dict(messages[0], content=f"{messages[0]['content']}\n\n{block}")
            return [first, *messages[1:]]
        return [{"role": "system", "content": block}, *messages]

    def _flatten_calls(self, message: dict[str, Any]) -> dict[str, Any]:
        # The template would drop calls and tool results; write them as text in the model's call format.
        fmt = self.call_format
        if message.get("tool_calls"):
            calls = [
                fmt.begin
                + json.dumps({fmt.name_key: c["function"]["name"], fmt.args_key: c["function"]["arguments"]})
                + fmt.end
                for c in message["tool_calls"]
            ]
            text = fmt.prefix + fmt.separator.join(calls) + fmt.suffix
            content = f"{message['content']}\n{text}" if message["content"] else text
            rest = {k: v for k, v in message.items() if k != "tool_calls"}
            return dict(rest, content=content)
        if message["role"] == "tool":
            return {"role": "user", "content": f"<tool_response>\n{message['content']}\n</tool_response>"}
        return message
