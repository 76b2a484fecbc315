"""Choosing a replica for each request: conversation affinity, then the longest cached prefix, then least load.

Pure bookkeeping, no I/O: the remote engine reports what happened (a request started, produced its first token,
finished; a replica failed a probe or came back) and asks where the next request goes.
"""

from __future__ import annotations

import math
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Reason(StrEnum):
    """Why a request went where it went (a metrics label)."""

    AFFINITY = "affinity"
    PREFIX = "prefix"
    LOAD = "load"
    RETRY = "retry"
    ROUND_ROBIN = "round_robin"


class Policy(StrEnum):
    """How replicas are chosen: `cache-aware` (affinity, prefix, load) or `round-robin` (for comparison)."""

    CACHE_AWARE = "cache-aware"
    ROUND_ROBIN = "round-robin"


class NoReplica(Exception):
    """No replica is up (or none is left to retry on)."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long a failed replica stays out: base, doubling per consecutive failure, up to cap (seconds)."""

    base: float = 1.0
    cap: float = 30.0

    def delay(self, failures: int) -> float:
        """The wait after this many consecutive failures."""
        return min(self.cap, self.base * 2 ** max(0, failures - 1))


@dataclass(eq=False, slots=True)
class Replica:
    """One replica's health and load as this front end sees them."""

    url: str
    bit: int
    up: bool = False
    failures: int = 0
    retry_at: float = 0.0
    last_error: str | None = None
    started_at: float | None = None
    in_flight: int = 0
    queued_tokens: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    routed: dict[Reason, int] = field(default_factory=lambda: dict.fromkeys(Reason, 0))


@dataclass(frozen=True, slots=True)
class ReplicaStats:
    """A snapshot of one replica for /health and /metrics."""

    url: str
    up: bool
    in_flight: int
    queued_tokens: int
    failures: int
    last_error: str | None
    routed: Mapping[str, int]
    prompt_tokens: int
    cached_tokens: int


class PrefixIndex:
    """Which replicas were sent which whole blocks of prompt: chained block hashes -> a bitmask of replicas.

    Bounded: beyond `capacity` blocks the least recently used are evicted. A prompt's blocks are touched last to
    first, so a shared beginning stays longest, as the replicas' own caches keep it.
    """

    def __init__(self, block_size: int, capacity: int) -> None:
        self.block_size = block_size
        self.capacity = capacity
        self._blocks: OrderedDict[int, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._blocks)

    def hashes(self, tokens: Sequence[int], start: Sequence[int] = (), salt: str | None = None) -> list[int]:
        """The chained hash of every whole block of tokens; `start` holds already known leading hashes.

        Blocks under different cache salts never match, as the replicas never share them either.
        """
        out = list(start)
        size = self.block_size
        h = out[-1] if out else hash(salt) if salt else 0
        for i in range(len(out) * size, len(tokens) - size + 1, size):
            h = hash((h, *tokens[i : i + size]))
            out.append(h)
        return out

    def match(self, hashes: Sequence[int], allowed: int) -> tuple[int, int]:
        """The replicas (a mask within allowed) holding the longest leading run of these blocks, and its length."""
        mask, depth = allowed, 0
        get = self._blocks.get
        for h in hashes:
            narrowed = mask & get(h, 0)
            if not narrowed:
                break
            mask, depth = narrowed, depth + 1
        return (mask if depth else 0), depth

    def add(self, hashes: Sequence[int], bit: int) -> None:
        """Record that the replica with this bit was sent these blocks."""
        blocks = self._blocks
        for h in reversed(hashes):
            seen = blocks.get(h)
            if seen is None:
                blocks[h] = bit
            else:
                blocks[h] = seen | bit
                blocks.move_to_end(h)
        while len(blocks) > self.capacity:
            blocks.popitem(last=False)

    def forget(self, bit: int) -> None:
        """Drop one replica from every block (it restarted with an empty cache); a full pass, done rarely."""
        keep = ~bit
        blocks = self._blocks
        for h in [h for h, mask in blocks.items() if mask & bit]:
            rest = blocks[h] & keep
            if rest:
                blocks[h] = rest
            else:
                del blocks[h]

    def nbytes(self) -> int:
        """Approximate memory held: the ordered dict's table and links plus one 64-bit int key per block."""
        return sys.getsizeof(self._blocks) + len(self._blocks) * 36


@dataclass(eq=False, slots=True)
class Ticket:
    """One request placed on one replica; tell it when the first token arrives and when the request ends."""

    replica: Replica
    reason: Reason
    hashes: list[int]
    queued: int
    prompt: Sequence[int]

    def first_token(self) -> None:
        """The prompt is prefilled: it no longer counts as queued work."""
        self.replica.queued_tokens -= self.queued
        self.queued = 0


class Router:
    """Places requests on replicas and keeps the prefix index and per-replica load."""

    def __init__(
        self,
        urls: Iterable[str],
        policy: Policy = Policy.CACHE_AWARE,
        block_size: int = 16,
        index_blocks: int = 1 << 17,
        load_slack: float = 0.5,
        min_prefix_ratio: float = 0.5,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.replicas = [Replica(url, 1 << i) for i, url in enumerate(dict.fromkeys(urls))]
        self.by_url = {r.url: r for r in self.replicas}
        self.policy = policy
        self.index = PrefixIndex(block_size, index_blocks)
        self.load_slack = load_slack
        self.min_prefix_ratio = min_prefix_ratio
        self.backoff = backoff or Backoff()
        self.clock = clock
        self._turn = 0

    def route(
        self,
        prompt: Sequence[int],
        affinity: str | None = None,
        exclude: Sequence[Replica] = (),
        retry: bool = False,
        salt: str | None = None,
    ) -> Ticket:
        """Choose a replica for this prompt and count the request on it; raise NoReplica when none is up."""
        up = [r for r in self.replicas if r.up and r not in exclude]
        if not up:
            raise NoReplica("no replica is up" if not exclude else "no other replica is up to retry on")
        self._turn += 1
        if self.policy is Policy.ROUND_ROBIN:
            return self._place(up[self._turn % len(up)], Reason.ROUND_ROBIN, [], prompt, retry)
        hashes = self.index.hashes(prompt, salt=salt)
        # Bounded load: no replica takes more than (1 + slack) times its fair share of what is in flight.
        cap = math.ceil((1 + self.load_slack) * (sum(r.in_flight for r in up) + 1) / len(up))
        eligible = [r for r in up if r.in_flight < cap]
        sticky = self.by_url.get(affinity) if affinity else None
        if sticky is not None and sticky in eligible:
            return self._place(sticky, Reason.AFFINITY, hashes, prompt, retry)
        allowed = sum(r.bit for r in eligible)
        mask, depth = self.index.match(hashes, allowed)
        if depth and depth * self.index.block_size >= self.min_prefix_ratio * len(prompt):
            best = self._least_loaded([r for r in eligible if r.bit & mask])
            return self._place(best, Reason.PREFIX, hashes, prompt, retry)
        return self._place(self._least_loaded(eligible or up), Reason.LOAD, hashes, prompt, retry)

    def _least_loaded(self, candidates: Sequence[Replica]) -> Replica:
        # Ties rotate, so idle replicas share the first requests instead of the first listed taking them all.
        n = len(candidates)
        start = self._turn % n
        return min((candidates[(start + i) % n] for i in range(n)), key=lambda r: (r.in_flight, r.queued_tokens))

    def _place(self, replica: Replica, reason: Reason, hashes: list[int], prompt: Sequence[int], retry: bool) -> Ticket:
        if retry:
            reason = Reason.RETRY
        cached = self.index.match(hashes, replica.bit)[1] * self.index.block_size if hashes else 0
        queued = max(0, len(prompt) - cached)
        if hashes:
            self.index.add(hashes, replica.bit)
        replica.routed[reason] += 1
        replica.in_flight += 1
        replica.queued_tokens += queued
        return Ticket(replica, reason, hashes, queued, prompt)

    def finish(
        self, ticket: Ticket, output: Sequence[int] = (), prompt_tokens: int = 0, cached_tokens: int = 0
    ) -> None:
        """The request ended; its output's whole blocks join the index (the replica caches them too)."""
        replica = ticket.replica
        ticket.first_token()
        replica.in_flight -= 1
        replica.prompt_tokens += prompt_tokens
        replica.cached_tokens += cached_tokens
        if output and ticket.hashes and replica.up:
            full = self.index.hashes([*ticket.prompt, *output], ticket.hashes)
            self.index.add(full[len(ticket.hashes) :], replica.bit)

    def failed(self, replica: Replica, error: str) -> None:
        """Take the replica out; it is probed again after a backoff that grows with each consecutive failure."""
        replica.up = False
        replica.failures += 1
        replica.last_error = error
        replica.retry_at = self.clock() + self.backoff.delay(replica.failures)

    def admitted(self, replica: Replica, started_at: float | None) -> None:
        """The replica passed its checks; a restart (new start time) emptied its cache, so forget its blocks."""
        if replica.started_at is not None and started_at != replica.started_at:
            self.index.forget(replica.bit)
        replica.started_at = started_at
        replica.up = True
        replica.failures = 0
        replica.last_error = None

    def use_block_size(self, size: int) -> None:
        """Match the replicas' KV block size; only before anything was indexed (hashes depend on it)."""
        if not len(self.index):
            self.index.block_size = size

    def due(self) -> list[Replica]:
        """Replicas that are out and whose backoff has passed: probe them again."""
        now = self.clock()
        return [r for r in self.replicas if not r.up and r.retry_at <= now]

    def stats(self) -> list[ReplicaStats]:
        """A snapshot of every replica."""
        return [
            ReplicaStats(
                url=r.url,
                up=r.up,
                in_flight=r.in_flight,
                queued_tokens=r.queued_tokens,
                failures=r.failures,
                last_error=r.last_error,
                routed={str(k): v for k, v in r.routed.items()},
                prompt_tokens=r.prompt_tokens,
                cached_tokens=r.cached_tokens,
            )
            for r in self.replicas
        ]
