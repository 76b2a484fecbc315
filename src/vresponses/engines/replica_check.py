"""Admitting a replica: it runs a tested vLLM, serves the model, detokenizes (so text mode, stop strings and
structured outputs work), and reports cached tokens; what it tells us (context, KV block size, start time) is kept."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import httpx

from vresponses.engines import wire
from vresponses.engines.base import Placement, SamplingOptions

log = logging.getLogger(__name__)

_BLOCK_SIZE = re.compile(r'^vllm:cache_config_info\{[^}]*\bblock_size="(\d+)"', re.MULTILINE)
_STARTED = re.compile(r"^process_start_time_seconds ([0-9.e+]+)", re.MULTILINE)


class ReplicaRefused(Exception):
    """The replica answered but cannot serve this front end (wrong version, mode or model)."""


@dataclass(frozen=True, slots=True)
class ReplicaInfo:
    """What a replica reported when it was admitted."""

    version: str
    model: str
    max_model_len: int
    block_size: int | None
    started_at: float | None
    reports_cached_tokens: bool


async def check_replica(client: httpx.AsyncClient, url: str, probe_ids: list[int], seconds: float) -> ReplicaInfo:
    """Ask the replica who it is and run a one-token generation; raise ReplicaRefused or an httpx error."""
    await _get(client, url + "/health", seconds)
    version = (await _get(client, url + "/version", seconds)).json().get("version", "")
    if not wire.version_supported(version):
        raise ReplicaRefused(
            f"vLLM {version or '(unknown)'} is outside the tested range {wire.tested_range()} of the wire protocol"
        )
    models = (await _get(client, url + "/v1/models", seconds)).json().get("data") or []
    if not models:
        raise ReplicaRefused("the replica lists no model")
    metrics = (await _get(client, url + "/metrics", seconds)).text
    block = _BLOCK_SIZE.search(metrics)
    started = _STARTED.search(metrics)
    body = wire.generate_body(
        "vresponses-probe-" + url.rsplit(":", 1)[-1].strip("/"),
        probe_ids,
        SamplingOptions(max_tokens=1, temperature=0.0),
        Placement(),
    )
    usage: wire.Usage | None = None
    # A generation waits its turn behind the replica's running requests: allow it far longer than a GET.
    async with client.stream("POST", url + wire.GENERATE_PATH, content=body, timeout=max(60.0, seconds)) as response:
        if response.status_code != 200:
            message = wire.error_message(await response.aread())
            raise ReplicaRefused(f"a one-token generation failed ({response.status_code}: {message}); {_MODE_HINT}")
        lines = wire.SSELines()
        async for data in response.aiter_bytes():
            for payload in lines.feed(data):
                if payload == wire.DONE:
                    continue
                chunk = wire.decode_chunk(payload)
                if chunk.error is not None:
                    raise ReplicaRefused(f"a one-token generation failed: {chunk.error.message}; {_MODE_HINT}")
                usage = chunk.usage or usage
    reports_cached = usage is not None and usage.prompt_tokens_details is not None
    if not reports_cached:
        log.warning("replica %s does not report cached tokens: start it with --enable-prompt-tokens-details", url)
    return ReplicaInfo(
        version=version,
        model=str(models[0].get("id", "")),
        max_model_len=int(models[0].get("max_model_len") or 0),
        block_size=int(block[1]) if block else None,
        started_at=float(started[1]) if started else None,
        reports_cached_tokens=reports_cached,
    )


_MODE_HINT = f"start replicas with `vllm serve MODEL {wire.REPLICA_FLAGS}` (not --tokens-only)"


async def _get(client: httpx.AsyncClient, url: str, seconds: float) -> httpx.Response:
    response = await client.get(url, timeout=seconds)
    if response.status_code != 200:
        raise ReplicaRefused(f"GET {url} answered {response.status_code}")
    return response
