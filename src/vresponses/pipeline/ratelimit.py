"""Per-key limits for shared deployments: requests per minute (a moving window) and requests in flight at once,
reported in the `x-ratelimit-*` headers OpenAI sends.

The moving window is the `limits` library's (the one Flask-Limiter and SlowAPI use), on its in-process storage;
keys are the tenant ids (digests), never the keys themselves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from vresponses.errors import TooManyRequests


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """Per-key bounds; None disables each."""

    requests_per_minute: int | None = None
    concurrent_requests: int | None = None


class RateLimited(TooManyRequests):
    """A per-key limit was reached; carries the x-ratelimit headers to send with the 429."""

    def __init__(self, message: str, retry_after: int, headers: dict[str, str]) -> None:
        super().__init__(message, code="rate_limit_exceeded", retry_after=retry_after)
        self.headers = headers


def duration(seconds: float) -> str:
    """A reset time as OpenAI writes it: 120ms, 7s, 1m30s."""
    millis = max(0, round(seconds * 1000))
    if millis < 1000:
        return f"{millis}ms"
    whole = round(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


@dataclass
class KeyLimiter:
    """Admits a key's request (raising RateLimited) and tells the headers to send; release when it ends."""

    limits: KeyLimits
    _in_flight: dict[str, int] = field(default_factory=dict)
    _window: MovingWindowRateLimiter | None = None
    _item: RateLimitItemPerMinute | None = None

    def __post_init__(self) -> None:
        if self.limits.requests_per_minute:
            self._window = MovingWindowRateLimiter(MemoryStorage())
            self._item = RateLimitItemPerMinute(self.limits.requests_per_minute)

    @property
    def enabled(self) -> bool:
        """Whether any per-key limit is set."""
        return bool(self.limits.requests_per_minute or self.limits.concurrent_requests)

    async def acquire(self, tenant: str) -> dict[str, str]:
        """Count one request of this key; return the x-ratelimit headers, or raise RateLimited."""
        concurrent = self.limits.concurrent_requests
        running = self._in_flight.get(tenant, 0)
        if concurrent is not None and running >= concurrent:
            raise RateLimited(
                f"This key already has {running} requests in flight (limit {concurrent}, "
                f"--max-concurrent-per-key). Retry when one finishes.",
                retry_after=1,
                headers={},
            )
        if concurrent is not None:
            self._in_flight[tenant] = running + 1  # reserved before any await, so a burst cannot overshoot
        try:
            return await self._per_minute(tenant)
        except BaseException:
            self.release(tenant)
            raise

    async def _per_minute(self, tenant: str) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self._window is not None and self._item is not None:
            allowed = await self._window.hit(self._item, tenant)
            stats = await self._window.get_window_stats(self._item, tenant)
            reset = max(0.0, stats.reset_time - time.time())
            headers = {
                "x-ratelimit-limit-requests": str(self._item.amount),
                "x-ratelimit-remaining-requests": str(max(0, stats.remaining)),
                "x-ratelimit-reset-requests": duration(reset),
            }
            if not allowed:
                raise RateLimited(
                    f"Rate limit reached for requests: {self._item.amount} per minute per key "
                    f"(--rate-limit-rpm). Retry in {duration(reset)}.",
                    retry_after=max(1, int(reset + 0.999)),
                    headers=headers,
                )
        return headers

    def release(self, tenant: str) -> None:
        """One request of this key ended."""
        if self.limits.concurrent_requests is None:
            return
        left = self._in_flight.get(tenant, 0) - 1
        if left > 0:
            self._in_flight[tenant] = left
        else:
            self._in_flight.pop(tenant, None)
