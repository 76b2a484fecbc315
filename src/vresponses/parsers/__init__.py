"""Model-output parsers: importing this package registers every tool and reasoning parser by its vLLM name."""

from vresponses.parsers import (
    deepseek_v3,
    hermes,
    jsoncall,
    llama3_json,
    mistral,
    pythonic,
    qwen3_coder,
    think,
)
from vresponses.parsers.base import REASONING_PARSERS, TOOL_PARSERS, lookup

__all__ = [
    "REASONING_PARSERS",
    "TOOL_PARSERS",
    "deepseek_v3",
    "hermes",
    "jsoncall",
    "llama3_json",
    "lookup",
    "mistral",
    "pythonic",
    "qwen3_coder",
    "think",
]
