"""The Store contract, run against every backend (memory fake, SQLite, PostgreSQL) so they stay alike."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from vresponses.store import (
    CANCELLED,
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    QUEUED,
    ChainTooLarge,
    Conflict,
    Store,
    StoredResponse,
    StoreError,
    make_store,
)

Row = Callable[..., StoredResponse]


async def must_get(store: Store, response_id: str, tenant: str) -> StoredResponse:
    got = await store.get(response_id, tenant)
    assert got is not None, response_id
    return got


async def test_insert_then_get_returns_same_row(store: Store, row: Row) -> None:
    r = row("resp_1", input_items=b"\x00\xffbinary", cancel_requested=False)
    await store.insert(r)
    assert await store.get("resp_1", "t1") == r
    assert await store.count() == 1


async def test_get_is_scoped_to_tenant(store: Store, row: Row) -> None:
    await store.insert(row("resp_1", tenant="t1"))
    assert await store.get("resp_1", "t2") is None
    assert await store.get("missing", "t1") is None


async def test_duplicate_id_conflicts_even_across_tenants(store: Store, row: Row) -> None:
    await store.insert(row("resp_1", body=b"first"))
    with pytest.raises(Conflict):
        await store.insert(row("resp_1", body=b"second"))
    with pytest.raises(Conflict):
        await store.insert(row("resp_1", tenant="t2"))
    assert (await must_get(store, "resp_1", "t1")).body == b"first"


LAPSED, LIVE = -100.0, 1000.0  # lease_seconds: already run out, or far from it


async def test_finish_replaces_result_fields_only(store: Store, row: Row) -> None:
    await store.insert(row("resp_1", status=IN_PROGRESS, input_items=b"in"), lease_seconds=LAPSED)
    assert await store.finish(row("resp_1", status=COMPLETED, output_items=b"out", body=b"done", updated_at=2000.0))
    got = await store.get("resp_1", "t1")
    assert got is not None
    assert (got.status, got.output_items, got.body, got.updated_at) == (COMPLETED, b"out", b"done", 2000.0)
    assert (got.input_items, got.created_at) == (b"in", 1000.0)
    # The lease went with the final status, so the row can no longer expire.
    assert await store.expire_leases() == 0


async def test_finish_with_unfinished_status_keeps_lease(store: Store, row: Row) -> None:
    await store.insert(row("resp_1", status=QUEUED), lease_seconds=LAPSED)
    assert await store.finish(row("resp_1", status=IN_PROGRESS, updated_at=20.0))
    assert (await must_get(store, "resp_1", "t1")).status == IN_PROGRESS
    assert await store.expire_leases() == 1


async def test_a_final_row_never_flips_back(store: Store, row: Row) -> None:
    # A job whose lease expired (a stalled process) finishes later: its result must not overwrite "failed".
    await store.insert(row("resp_1", status=IN_PROGRESS, body=b"running"), lease_seconds=LAPSED)
    assert await store.expire_leases() == 1
    assert not await store.finish(row("resp_1", status=COMPLETED, body=b"late"))
    got = await must_get(store, "resp_1", "t1")
    assert (got.status, got.body) == (FAILED, b"running")
    await store.insert(row("resp_2", status=COMPLETED, body=b"done"))
    assert not await store.finish(row("resp_2", status=CANCELLED, body=b"cancel"))
    assert (await must_get(store, "resp_2", "t1")).status == COMPLETED


async def test_finish_of_deleted_or_foreign_row_writes_nothing(store: Store, row: Row) -> None:
    assert not await store.finish(row("gone", status=COMPLETED))
    assert await store.get("gone", "t1") is None
    await store.insert(row("resp_1", status=IN_PROGRESS, body=b"mine"))
    assert not await store.finish(row("resp_1", tenant="t2", status=COMPLETED, body=b"theirs"))
    assert (await must_get(store, "resp_1", "t1")).body == b"mine"


async def test_delete_removes_row_for_owner_only(store: Store, row: Row) -> None:
    await store.insert(row("resp_1"))
    assert await store.delete("resp_1", "t2") is False
    assert await store.delete("resp_1", "t1") is True
    assert await store.get("resp_1", "t1") is None
    assert await store.delete("resp_1", "t1") is False
    assert await store.count() == 0


async def _insert_chain(store: Store, row: Row, ids: list[str], tenant: str = "t1") -> None:
    prev = None
    for i, rid in enumerate(ids):
        await store.insert(row(rid, tenant=tenant, previous_response_id=prev, created_at=1000.0 + i))
        prev = rid


async def test_chain_returns_ancestors_oldest_first(store: Store, row: Row) -> None:
    await _insert_chain(store, row, ["a", "b", "c", "d"])
    await store.insert(row("b2", previous_response_id="a"))  # a sibling branch must not leak in
    chain = await store.chain("d", "t1")
    assert [r.id for r in chain or []] == ["a", "b", "c", "d"]
    assert [r.id for r in await store.chain("b2", "t1") or []] == ["a", "b2"]
    assert [r.id for r in await store.chain("a", "t1") or []] == ["a"]
    d = await store.get("d", "t1")
    assert chain is not None and d is not None
    assert (chain[-1].id, chain[-1].status, chain[-1].previous_response_id) == ("d", d.status, "c")
    assert (chain[-1].input_items, chain[-1].output_items) == (d.input_items, d.output_items)


async def test_chain_stops_loading_past_its_byte_cap(store: Store, row: Row) -> None:
    prev = None
    for i, rid in enumerate(["a", "b", "c", "d"]):
        await store.insert(
            row(rid, previous_response_id=prev, created_at=1000.0 + i, input_items=b"i" * 100, output_items=b"o" * 50)
        )
        prev = rid
    assert [r.id for r in await store.chain("d", "t1", max_bytes=600) or []] == ["a", "b", "c", "d"]
    with pytest.raises(ChainTooLarge) as info:
        await store.chain("d", "t1", max_bytes=599)
    assert info.value.total == 600
    with pytest.raises(ChainTooLarge) as info:
        await store.chain("d", "t1", max_bytes=200)
    assert info.value.total == 300  # the walk stopped at the first link past the cap
    assert [r.id for r in await store.chain("b", "t1", max_bytes=300) or []] == ["a", "b"]


async def test_chain_of_missing_or_foreign_start_is_none(store: Store, row: Row) -> None:
    await _insert_chain(store, row, ["a", "b"])
    assert await store.chain("missing", "t1") is None
    assert await store.chain("b", "t2") is None


async def test_chain_through_foreign_ancestor_is_none(store: Store, row: Row) -> None:
    await store.insert(row("theirs", tenant="t2"))
    await store.insert(row("mine", tenant="t1", previous_response_id="theirs"))
    assert await store.get("mine", "t1") is not None
    assert await store.chain("mine", "t1") is None


async def test_chain_through_deleted_ancestor_is_none(store: Store, row: Row) -> None:
    await _insert_chain(store, row, ["a", "b", "c"])
    assert await store.delete("a", "t1")
    # The children survive and can be read alone; only continuing their conversation is impossible.
    assert await store.get("c", "t1") is not None
    assert await store.chain("c", "t1") is None
    assert await store.chain("b", "t1") is None


async def test_chain_with_cycle_is_none(store: Store, row: Row) -> None:
    await store.insert(row("x", previous_response_id="y"))
    await store.insert(row("y", previous_response_id="x"))
    await store.insert(row("z", previous_response_id="z"))
    assert await store.chain("x", "t1") is None
    assert await store.chain("z", "t1") is None


async def test_chain_longer_than_cap_is_none(store: Store, row: Row, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vresponses.store.sql.MAX_CHAIN_DEPTH", 5)
    monkeypatch.setattr("vresponses.store.memory.MAX_CHAIN_DEPTH", 5)
    await _insert_chain(store, row, [f"r{i}" for i in range(6)])
    assert [r.id for r in await store.chain("r4", "t1") or []] == ["r0", "r1", "r2", "r3", "r4"]
    assert await store.chain("r5", "t1") is None


async def test_expire_leases_fails_only_lapsed_unfinished_rows(store: Store, row: Row) -> None:
    before = time.time()
    await store.insert(row("lapsed_q", status=QUEUED), lease_seconds=LAPSED)
    await store.insert(row("lapsed_p", status=IN_PROGRESS), lease_seconds=-1.0)
    await store.insert(row("live", status=IN_PROGRESS), lease_seconds=LIVE)
    await store.insert(row("no_lease", status=IN_PROGRESS))
    await store.insert(row("done", status=COMPLETED), lease_seconds=LAPSED)  # final rows hold no lease
    assert await store.expire_leases() == 2
    for rid in ("lapsed_q", "lapsed_p"):
        got = await must_get(store, rid, "t1")
        # updated_at comes from the store's clock (the database's), which is this machine's here.
        assert got.status == FAILED and before - 5 < got.updated_at < time.time() + 5
    assert [(await must_get(store, rid, "t1")).status for rid in ("live", "no_lease", "done")] == [
        IN_PROGRESS,
        IN_PROGRESS,
        COMPLETED,
    ]
    assert await store.expire_leases() == 0


async def test_renew_leases_extends_and_reports_cancel_requests(store: Store, row: Row) -> None:
    await store.insert(row("a", status=IN_PROGRESS), lease_seconds=LAPSED)
    await store.insert(row("b", status=QUEUED), lease_seconds=LAPSED)
    assert await store.renew_leases([], LIVE) == []
    assert await store.renew_leases(["a", "b", "missing"], LIVE) == []
    assert await store.expire_leases() == 0

    flagged = await store.request_cancel("b", "t1")
    assert flagged is not None and flagged.cancel_requested and flagged.status == QUEUED
    assert await store.renew_leases(["a", "b"], LIVE) == ["b"]
    assert await store.expire_leases() == 0
    assert await store.renew_leases(["a", "b"], LAPSED) == ["b"]
    assert await store.expire_leases() == 2


async def test_renew_does_not_revive_expired_or_finished_rows(store: Store, row: Row) -> None:
    await store.insert(row("a", status=IN_PROGRESS), lease_seconds=LAPSED)
    assert await store.expire_leases() == 1
    assert await store.renew_leases(["a"], LIVE) == []
    assert (await must_get(store, "a", "t1")).status == FAILED
    assert await store.expire_leases() == 0


async def test_request_cancel_of_finished_missing_or_foreign_row(store: Store, row: Row) -> None:
    await store.insert(row("done", status=CANCELLED))
    got = await store.request_cancel("done", "t1")
    assert got is not None and not got.cancel_requested and got.status == CANCELLED
    assert await store.request_cancel("missing", "t1") is None
    await store.insert(row("theirs", tenant="t2", status=IN_PROGRESS))
    assert await store.request_cancel("theirs", "t1") is None
    assert not (await must_get(store, "theirs", "t2")).cancel_requested


async def test_prune_by_age_spares_unfinished_and_recent_rows(store: Store, row: Row) -> None:
    await store.insert(row("old_done", created_at=10.0))
    await store.insert(row("old_failed", created_at=20.0, status=FAILED))
    await store.insert(row("old_running", created_at=10.0, status=IN_PROGRESS))
    await store.insert(row("new_done", created_at=100.0))
    assert await store.prune(older_than=50.0, max_rows=None) == 2
    assert {rid for rid in ("old_done", "old_failed", "old_running", "new_done") if await store.get(rid, "t1")} == {
        "old_running",
        "new_done",
    }


async def test_prune_by_count_deletes_oldest_finished(store: Store, row: Row) -> None:
    for i in range(10):
        status = IN_PROGRESS if i < 3 else COMPLETED  # the three oldest are still running
        await store.insert(row(f"r{i}", created_at=float(i), status=status))
    assert await store.prune(older_than=None, max_rows=6) == 4
    assert await store.count() == 6
    kept = [f"r{i}" for i in range(10) if await store.get(f"r{i}", "t1")]
    assert kept == ["r0", "r1", "r2", "r7", "r8", "r9"]
    assert await store.prune(older_than=None, max_rows=6) == 0
    # Asking for fewer rows than are running deletes every finished row and no running one.
    assert await store.prune(older_than=None, max_rows=1) == 3
    assert await store.count() == 3


async def test_prune_by_age_and_count_together(store: Store, row: Row) -> None:
    for i in range(6):
        await store.insert(row(f"r{i}", created_at=float(i)))
    # Age removes r0 and r1; the count limit then removes r2 to leave three.
    assert await store.prune(older_than=2.0, max_rows=3) == 3
    assert [f"r{i}" for i in range(6) if await store.get(f"r{i}", "t1")] == ["r3", "r4", "r5"]
    assert await store.prune(older_than=None, max_rows=None) == 0


async def test_reopen_keeps_rows(store: Store, store_url: str, row: Row) -> None:
    await store.insert(row("kept", status=IN_PROGRESS), lease_seconds=LAPSED)
    await store.close()
    # memory:// makes a new, empty fake, so reopen the same object there; SQL gets a fresh instance.
    again = store if store_url.startswith("memory:") else make_store(store_url)
    await again.open()
    try:
        assert await again.get("kept", "t1") == row("kept", status=IN_PROGRESS)
        assert await again.expire_leases() == 1
    finally:
        await again.close()


async def test_calls_on_closed_store_raise_store_error(store_url: str, row: Row) -> None:
    s = make_store(store_url)
    with pytest.raises(StoreError):
        await s.get("x", "t1")
    await s.open()
    await s.close()
    with pytest.raises(StoreError):
        await s.insert(row("x"))


async def test_adopt_tenant_moves_only_that_tenants_rows(store: Store, row: Row) -> None:
    await store.insert(row("a", tenant="legacy"))
    await store.insert(row("b", tenant="legacy", previous_response_id="a"))
    await store.insert(row("c", tenant="other"))
    assert await store.adopt_tenant("legacy", "keyed") == 2
    assert await store.get("a", "legacy") is None
    assert [r.id for r in await store.chain("b", "keyed") or []] == ["a", "b"]
    assert await store.get("c", "other") is not None
    assert await store.adopt_tenant("legacy", "keyed") == 0


async def test_per_tenant_quota_prunes_only_that_tenants_oldest(store: Store, row: Row) -> None:
    for i in range(3):
        await store.insert(row(f"small{i}", tenant="small", created_at=float(i)))
    for i in range(10):
        await store.insert(row(f"big{i}", tenant="big", created_at=100.0 + i))
    assert await store.prune(None, None, max_rows_per_tenant=4) == 6
    assert [i for i in range(10) if await store.get(f"big{i}", "big")] == [6, 7, 8, 9]
    assert all([await store.get(f"small{i}", "small") for i in range(3)])


async def test_global_cap_takes_rows_from_the_largest_tenant_first(store: Store, row: Row) -> None:
    # The small tenant's rows are the oldest, yet the big tenant's writes must not evict them.
    for i in range(3):
        await store.insert(row(f"small{i}", tenant="small", created_at=float(i)))
    for i in range(10):
        await store.insert(row(f"big{i}", tenant="big", created_at=100.0 + i))
    assert await store.prune(None, max_rows=8) == 5
    assert all([await store.get(f"small{i}", "small") for i in range(3)])
    assert [i for i in range(10) if await store.get(f"big{i}", "big")] == [5, 6, 7, 8, 9]
    # Once both are level, each gives up its oldest in turn.
    assert await store.prune(None, max_rows=4) == 4
    assert await store.count() == 4
    assert await store.get("small0", "small") is None and await store.get("big5", "big") is None
