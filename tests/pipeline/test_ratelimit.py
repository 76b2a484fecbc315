"""Per-key limits: a moving window of requests per minute with OpenAI's headers, and requests in flight per key."""

from __future__ import annotations

import pytest

from vresponses.pipeline.ratelimit import KeyLimiter, KeyLimits, RateLimited, duration


def test_durations_read_like_openais() -> None:
    assert [duration(s) for s in (0.12, 0.9996, 7.2, 90, 3600)] == ["120ms", "1s", "7s", "1m30s", "60m0s"]


async def test_requests_per_minute_with_headers() -> None:
    limiter = KeyLimiter(KeyLimits(requests_per_minute=2))
    first = await limiter.acquire("tenant-a")
    second = await limiter.acquire("tenant-a")
    assert first["x-ratelimit-limit-requests"] == "2"
    assert (first["x-ratelimit-remaining-requests"], second["x-ratelimit-remaining-requests"]) == ("1", "0")
    assert second["x-ratelimit-reset-requests"].endswith("s")
    with pytest.raises(RateLimited) as info:
        await limiter.acquire("tenant-a")
    assert info.value.status == 429 and "--rate-limit-rpm" in info.value.message
    assert 1 <= (info.value.retry_after or 0) <= 60
    assert info.value.headers["x-ratelimit-remaining-requests"] == "0"
    other = await limiter.acquire("tenant-b")  # keys do not share a window
    assert other["x-ratelimit-remaining-requests"] == "1"


async def test_concurrent_requests_per_key() -> None:
    limiter = KeyLimiter(KeyLimits(concurrent_requests=1))
    assert limiter.enabled and await limiter.acquire("a") == {}
    with pytest.raises(RateLimited) as info:
        await limiter.acquire("a")
    assert "--max-concurrent-per-key" in info.value.message
    await limiter.acquire("b")
    limiter.release("a")
    await limiter.acquire("a")


async def test_a_refused_request_frees_its_concurrency_slot() -> None:
    limiter = KeyLimiter(KeyLimits(requests_per_minute=1, concurrent_requests=5))
    await limiter.acquire("a")
    for _ in range(3):
        with pytest.raises(RateLimited):
            await limiter.acquire("a")
    limiter.release("a")
    assert limiter._in_flight == {}


def test_disabled_by_default() -> None:
    assert not KeyLimiter(KeyLimits()).enabled
