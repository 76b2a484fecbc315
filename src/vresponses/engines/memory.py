"""KV-cache sizing on CPU: a bounded share of the memory the machine has now, never more than the model can use.

vLLM's CPU worker otherwise reserves `gpu_memory_utilization` (0.92) of the NUMA node's *total* memory and refuses
to start when less is *available* — which on an 8 GB node, with the server itself resident, is always.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GiB = 1 << 30
MiB = 1 << 20

# Share of available memory the KV cache may take by default: the engine's weights, activations and the server
# itself need the rest.
DEFAULT_FRACTION = 0.25
# A cap for large machines: beyond this the default gains nothing a user would notice and costs start-up time.
DEFAULT_CAP = 8 * GiB
# vLLM's CPU default for the OpenAI server (engine/arg_utils.py), used when --max-num-seqs is not given.
CPU_DEFAULT_MAX_NUM_SEQS = 128

_DTYPE_BYTES = {
    "float32": 4,
    "float": 4,
    "bfloat16": 2,
    "float16": 2,
    "half": 2,
    "fp8": 1,
    "fp8_e4m3": 1,
    "fp8_e5m2": 1,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)


class NotEnoughMemory(Exception):
    """The machine cannot hold even one full-length sequence's KV cache; the message says what to pass."""


@dataclass(frozen=True, slots=True)
class KvCachePlan:
    """The chosen KV-cache size and the figures it was chosen from, for the start-up log line."""

    bytes: int
    bytes_per_token: int
    max_model_len: int
    available: int

    def describe(self) -> str:
        """One log line: size, how many tokens and full-length sequences it holds, and how to change it."""
        if not self.bytes_per_token:
            return (
                f"KV cache {self.bytes / GiB:.2f} GiB on CPU, sized from {self.available / GiB:.1f} GiB available; "
                "change it with --kv-cache-memory"
            )
        tokens = self.bytes // self.bytes_per_token
        return (
            f"KV cache {self.bytes / GiB:.2f} GiB on CPU: {tokens:,} tokens "
            f"({tokens / self.max_model_len:.1f} sequences of {self.max_model_len:,}), "
            f"sized from {self.available / GiB:.1f} GiB available; change it with --kv-cache-memory"
        )


def parse_size(text: str) -> int:
    """Bytes in '2GiB', '1.5G', '512MiB', '2048M' or a plain byte count; ValueError otherwise."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"not a memory size: {text!r} (use e.g. 2GiB or 512MiB)")
    number, unit = float(match.group(1)), match.group(2).lower()
    scale = {"": 1, "k": 1 << 10, "m": MiB, "g": GiB, "t": 1 << 40}[unit]
    size = int(number * scale)
    if size <= 0:
        raise ValueError(f"a memory size must be positive: {text!r}")
    return size


def kv_bytes_per_token(config: dict[str, Any], dtype: str) -> int:
    """K and V bytes one token takes across all layers, from a Hugging Face config; ValueError if unknown."""
    text = config.get("text_config", config)
    layers = int(text["num_hidden_layers"])
    heads = int(text["num_attention_heads"])
    kv_heads = int(text.get("num_key_value_heads") or heads)
    head_dim = int(text.get("head_dim") or int(text["hidden_size"]) // heads)
    size = _DTYPE_BYTES.get(dtype) or _DTYPE_BYTES.get(str(text.get("torch_dtype") or text.get("dtype")), 2)
    return 2 * layers * kv_heads * head_dim * size


def model_config(model: str) -> dict[str, Any] | None:
    """The model folder's config.json, or None for hub ids and unreadable folders."""
    path = Path(model) / "config.json"
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def available_memory() -> int:
    """Bytes available now, as vLLM's CPU worker will count them (NUMA node, cgroup limit), else the system's."""
    try:
        from vllm.utils.cpu_resource_utils import get_memory_node_info

        return int(get_memory_node_info(0).available_memory)
    except Exception:  # an older/newer vLLM without the helper: the system-wide figure is close enough
        import psutil

        return int(psutil.virtual_memory().available)


def plan_kv_cache(
    bytes_per_token: int,
    max_model_len: int,
    max_num_seqs: int,
    available: int,
    fraction: float = DEFAULT_FRACTION,
    cap: int = DEFAULT_CAP,
) -> KvCachePlan:
    """A share of available memory, at most what max_num_seqs full sequences use; NotEnoughMemory below one."""
    one_sequence = bytes_per_token * max_model_len
    useful = one_sequence * max_num_seqs
    budget = min(int(available * fraction), cap, useful)
    if budget < one_sequence:
        raise NotEnoughMemory(
            f"The KV cache needs at least {one_sequence / GiB:.2f} GiB for one {max_model_len:,}-token sequence, "
            f"but only {available / GiB:.2f} GiB of memory is available ({fraction:.0%} may be used by default): "
            f"pass a smaller --max-model-len, or --kv-cache-memory with a size that fits."
        )
    return KvCachePlan(budget, bytes_per_token, max_model_len, available)


def plan_for_model(model: str, dtype: str, max_model_len: int | None, max_num_seqs: int | None) -> KvCachePlan:
    """The default CPU plan for a model folder; a model whose config cannot be read gets the plain share."""
    available = available_memory()
    config = model_config(model)
    try:
        assert config is not None
        per_token = kv_bytes_per_token(config, dtype)
        length = max_model_len or int(config.get("text_config", config)["max_position_embeddings"])
    except (AssertionError, KeyError, TypeError, ValueError):
        return KvCachePlan(min(int(available * DEFAULT_FRACTION), DEFAULT_CAP), 0, max_model_len or 0, available)
    return plan_kv_cache(per_token, length, max_num_seqs or CPU_DEFAULT_MAX_NUM_SEQS, available)
