"""The router's rules one at a time: affinity, longest cached prefix, bounded load, round-robin, health, eviction."""

from __future__ import annotations

import tracemalloc

import pytest

from vresponses.engines.router import Backoff, NoReplica, Policy, PrefixIndex, Reason, Router

A, B, C = "http://a:8000", "http://b:8000", "http://c:8000"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def router(*urls: str, **kwargs: object) -> Router:
    r = Router(urls or (A, B), block_size=4, **kwargs)  # type: ignore[arg-type]
    for replica in r.replicas:
        r.admitted(replica, started_at=1.0)
    return r


def tokens(n: int, start: int = 0) -> list[int]:
    return list(range(start, start + n))


def test_first_requests_spread_by_load() -> None:
    r = router(A, B, C)
    placed = [r.route(tokens(10, start=1000 * i)) for i in range(3)]
    assert {t.replica.url for t in placed} == {A, B, C}
    assert all(t.reason is Reason.LOAD for t in placed)


def test_affinity_wins_over_load_and_prefix() -> None:
    r = router()
    first = r.route(tokens(40))
    other = "http://a:8000" if first.replica.url == B else B
    # The other replica is idle and the affinity one busy, yet the conversation goes back to its replica.
    ticket = r.route(tokens(8, start=500), affinity=first.replica.url)
    assert ticket.replica is first.replica and ticket.reason is Reason.AFFINITY
    assert r.by_url[other].in_flight == 0


def test_unknown_or_down_affinity_falls_through() -> None:
    r = router()
    assert r.route(tokens(8), affinity="http://gone:1").reason is Reason.LOAD
    r.failed(r.by_url[A], "probe")
    ticket = r.route(tokens(8, start=50), affinity=A)
    assert ticket.replica.url == B and ticket.reason is not Reason.AFFINITY


def test_longest_cached_prefix_wins() -> None:
    r = router(A, B, C)
    short = r.route(tokens(8))  # blocks 0-1 on one replica
    r.finish(short)
    long = r.route(tokens(24), exclude=[short.replica])  # blocks 0-5 on another
    r.finish(long)
    ticket = r.route(tokens(26))
    assert ticket.reason is Reason.PREFIX and ticket.replica is long.replica


def test_prefix_blocks_of_another_cache_salt_do_not_match() -> None:
    r = router()
    first = r.route(tokens(24), salt="tenant-a")
    r.finish(first)
    # The same tokens under another tenant's salt are not cached on the replica, so load decides.
    assert r.route(tokens(24), salt="tenant-b").reason is Reason.LOAD
    assert r.route(tokens(24), salt="tenant-a").reason is Reason.PREFIX


def test_prefix_needs_half_the_prompt() -> None:
    r = router()
    shared = r.route(tokens(8))  # two blocks
    r.finish(shared)
    # Two matching blocks of a 40-token prompt is under half: least load decides, not the short shared prefix.
    busy = r.route(tokens(8, start=900), affinity=shared.replica.url)
    assert busy.replica is shared.replica
    ticket = r.route(tokens(8) + tokens(32, start=5000))
    assert ticket.reason is Reason.LOAD and ticket.replica is not shared.replica


def test_load_bound_spills_a_hot_conversation() -> None:
    r = router(A, B, load_slack=0.5)
    tickets = [r.route(tokens(8, start=100 * i), affinity=A) for i in range(8)]
    on_a = sum(t.replica.url == A for t in tickets)
    # cap = ceil(1.5 * (in flight + 1) / 2): A never holds more than its bounded share of eight.
    assert on_a == 6
    assert all(t.reason is Reason.AFFINITY for t in tickets if t.replica.url == A)
    assert all(t.reason is Reason.LOAD for t in tickets if t.replica.url == B)


def test_load_bound_spills_a_hot_prefix() -> None:
    r = router(A, B, load_slack=0.0)
    tickets = [r.route(tokens(16)) for _ in range(6)]
    assert sorted(t.replica.url for t in tickets).count(A) == 3
    assert sum(t.reason is Reason.PREFIX for t in tickets) >= 2


def test_least_loaded_breaks_ties_by_queued_prompt_tokens() -> None:
    r = router(A, B)
    big = r.route(tokens(400))
    small = r.route(tokens(8, start=5000))
    assert big.replica is not small.replica
    assert (big.replica.queued_tokens, small.replica.queued_tokens) == (400, 8)
    # One request in flight on each: the one whose prompt is still waiting to be prefilled is the busier.
    assert r.route(tokens(8, start=9000)).replica is small.replica
    big.first_token()
    assert big.replica.queued_tokens == 0


def test_round_robin_ignores_affinity_and_prefix() -> None:
    r = router(A, B, C, policy=Policy.ROUND_ROBIN)
    urls = [r.route(tokens(16), affinity=A).replica.url for _ in range(6)]
    assert urls[:3] != [A, A, A]
    assert sorted(urls) == sorted([A, B, C] * 2)
    assert len(r.index) == 0


def test_retry_excludes_the_failed_replica() -> None:
    r = router(A, B)
    first = r.route(tokens(8), affinity=A)
    r.finish(first)
    retry = r.route(tokens(8), affinity=A, exclude=[first.replica], retry=True)
    assert retry.replica.url == B and retry.reason is Reason.RETRY
    with pytest.raises(NoReplica):
        r.route(tokens(8), exclude=r.replicas)


def test_failure_backs_off_exponentially_and_readmits() -> None:
    clock = Clock()
    r = router(A, B, backoff=Backoff(base=1.0, cap=5.0), clock=clock)
    a = r.by_url[A]
    delays = []
    for _ in range(5):
        r.failed(a, "connect refused")
        delays.append(a.retry_at - clock.now)
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert all(r.route(tokens(8, start=i * 10)).replica.url == B for i in range(3))
    assert r.due() == []
    clock.now += 5.0
    assert r.due() == [a]
    r.admitted(a, started_at=1.0)
    assert a.up and a.failures == 0 and a.last_error is None


def test_no_replica_up_raises() -> None:
    r = Router((A,))
    with pytest.raises(NoReplica):
        r.route(tokens(8))


def test_restart_forgets_the_replicas_blocks() -> None:
    r = router(A, B)
    t = r.route(tokens(16))
    r.finish(t)
    assert r.index.match(r.index.hashes(tokens(16)), t.replica.bit)[1] == 4
    r.failed(t.replica, "gone")
    r.admitted(t.replica, started_at=1.0)  # same process came back: its cache is intact
    assert r.index.match(r.index.hashes(tokens(16)), t.replica.bit)[1] == 4
    r.admitted(t.replica, started_at=2.0)  # restarted: an empty cache
    assert r.index.match(r.index.hashes(tokens(16)), t.replica.bit)[1] == 0


def test_output_blocks_join_the_index() -> None:
    r = router(A, B)
    t = r.route(tokens(10))
    r.finish(t, output=[7, 7, 7, 7, 7, 7], prompt_tokens=10, cached_tokens=0)
    # A client resending the whole conversation (prompt + answer) finds all four blocks on that replica.
    follow = tokens(10) + [7] * 6 + [1, 2]
    assert r.index.match(r.index.hashes(follow), t.replica.bit)[1] == 4
    assert t.replica.prompt_tokens == 10 and t.replica.in_flight == 0


def test_index_is_bounded_and_keeps_shared_beginnings() -> None:
    index = PrefixIndex(block_size=4, capacity=50)
    shared = tokens(16)  # four blocks every prompt starts with
    for i in range(100):
        index.add(index.hashes(shared + tokens(40, start=1000 * (i + 1))), bit=1)
        assert len(index) <= 50
    # The latest prompt's blocks are touched last-to-first, so its beginning (the shared part) survives eviction.
    assert index.match(index.hashes(shared), 1) == (1, 4)


def test_index_memory_estimate_is_close() -> None:
    index = PrefixIndex(block_size=16, capacity=20_000)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(200):
        index.add(index.hashes(tokens(1600, start=100_000 * i)), bit=1 << (i % 8))
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(index) == 20_000
    assert 0.75 * used <= index.nbytes() <= 1.25 * used, (used, index.nbytes())
