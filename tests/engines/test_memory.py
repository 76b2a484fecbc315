"""KV-cache sizing on CPU: fits what is available, never beyond what the model can use, one sentence when too small."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from vresponses import cli
from vresponses.engines import memory
from vresponses.engines.memory import GiB, MiB, NotEnoughMemory, kv_bytes_per_token, parse_size, plan_kv_cache

SMOLLM2 = {
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "head_dim": 64,
    "hidden_size": 576,
    "max_position_embeddings": 8192,
}


def test_bytes_per_token_counts_k_and_v_over_every_layer() -> None:
    assert kv_bytes_per_token(SMOLLM2, "float32") == 2 * 30 * 3 * 64 * 4
    assert kv_bytes_per_token(SMOLLM2, "bfloat16") == 2 * 30 * 3 * 64 * 2
    without_head_dim = {k: v for k, v in SMOLLM2.items() if k != "head_dim"}
    assert kv_bytes_per_token(without_head_dim, "float32") == 2 * 30 * 3 * (576 // 9) * 4


def test_sizes_parse_in_binary_units() -> None:
    assert parse_size("2GiB") == 2 * GiB
    assert parse_size("512MiB") == 512 * MiB
    assert parse_size("1.5G") == int(1.5 * GiB)
    assert parse_size("4096") == 4096
    for bad in ("", "lots", "-1G", "0"):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_plan_takes_a_share_of_available_memory() -> None:
    per_token = kv_bytes_per_token(SMOLLM2, "float32")
    plan = plan_kv_cache(per_token, 8192, 128, available=6 * GiB)
    assert plan.bytes == int(6 * GiB * memory.DEFAULT_FRACTION)
    assert "GiB on CPU" in plan.describe() and "--kv-cache-memory" in plan.describe()


def test_plan_never_exceeds_what_the_sequences_can_use() -> None:
    per_token = kv_bytes_per_token(SMOLLM2, "float32")
    plan = plan_kv_cache(per_token, 1024, 2, available=64 * GiB)
    assert plan.bytes == per_token * 1024 * 2


def test_plan_is_capped_on_large_machines() -> None:
    per_token = kv_bytes_per_token(SMOLLM2, "float32")
    assert plan_kv_cache(per_token, 8192, 1024, available=512 * GiB).bytes == memory.DEFAULT_CAP


def test_too_little_memory_says_what_was_needed_found_and_which_flag() -> None:
    per_token = kv_bytes_per_token(SMOLLM2, "float32")
    with pytest.raises(NotEnoughMemory) as caught:
        plan_kv_cache(per_token, 8192, 128, available=1 * GiB)
    message = str(caught.value)
    assert "0.35 GiB" in message and "1.00 GiB" in message
    assert "--max-model-len" in message and "--kv-cache-memory" in message


def test_serve_exits_with_one_sentence_when_memory_is_too_small(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    monkeypatch.setattr(memory, "available_memory", lambda: 1 * GiB)
    monkeypatch.setattr(cli, "_cuda", lambda: False)
    started: list[object] = []
    monkeypatch.setattr(cli, "run", lambda *a, **k: started.append(a))
    result = CliRunner().invoke(cli.app, ["serve"])
    assert result.exit_code == 2, result.output
    assert "not enough memory" in result.output and "--kv-cache-memory" in result.output
    assert "Traceback" not in result.output and not started


def test_serve_passes_the_planned_size_to_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    monkeypatch.setattr(memory, "available_memory", lambda: 8 * GiB)
    monkeypatch.setattr(cli, "_cuda", lambda: False)
    started: list[cli.Settings] = []
    monkeypatch.setattr(cli, "run", lambda settings, *a, **k: started.append(settings))
    assert CliRunner().invoke(cli.app, ["serve"]).exit_code == 0
    assert started[0].engine.kv_cache_memory_bytes == int(8 * GiB * memory.DEFAULT_FRACTION)
    started.clear()
    assert CliRunner().invoke(cli.app, ["serve", "--kv-cache-memory", "1GiB"]).exit_code == 0
    assert started[0].engine.kv_cache_memory_bytes == GiB
    started.clear()
    assert CliRunner().invoke(cli.app, ["serve", "--gpu-memory-utilization", "0.5"]).exit_code == 0
    assert started[0].engine.kv_cache_memory_bytes is None  # the user chose vLLM's own sizing
