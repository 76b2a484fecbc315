"""Tenants: keyed ids, legacy rows still reachable by their key, and a per-tenant prefix-cache salt."""

from __future__ import annotations

import hashlib

from starlette.testclient import TestClient
from tests.api.conftest import KEY

from vresponses.app import create_app
from vresponses.engines.fake import FakeEngine
from vresponses.pipeline.items import Message, encode_items
from vresponses.pipeline.tenants import Tenants, legacy_tenant
from vresponses.settings import Settings
from vresponses.store import COMPLETED, StoredResponse
from vresponses.store.memory import MemoryStore

M = "fake-model"
OTHER = {"Authorization": "Bearer other-key"}


def _tenants_of(store: MemoryStore) -> set[str]:
    return {row.tenant for row in store._rows.values()}


def test_tenant_ids_are_keyed_digests_not_plain_hashes(fake: FakeEngine) -> None:
    store = MemoryStore()
    app = create_app(Settings(api_keys=(KEY,)), engine_factory=lambda _: fake, store=store)
    with TestClient(app, headers={"Authorization": f"Bearer {KEY}"}) as client:
        assert client.post("/v1/responses", json={"model": M, "input": "hi"}).status_code == 200
    (tenant,) = _tenants_of(store)
    assert len(tenant) == 64
    assert tenant not in (legacy_tenant(KEY), hashlib.sha256(KEY.encode()).hexdigest())


def test_rows_stored_under_the_legacy_id_stay_reachable_by_their_key(fake: FakeEngine) -> None:
    store = MemoryStore()
    old = StoredResponse(
        id="resp_old",
        tenant=legacy_tenant(KEY),
        previous_response_id=None,
        status=COMPLETED,
        created_at=1.0,
        updated_at=1.0,
        input_items=encode_items([Message(role="user", content="remember the number 7")]),
        output_items=encode_items([]),
        body=b'{"id": "resp_old", "created": 1, "model": "fake-model", "status": "completed"}',
    )
    settings = Settings(api_keys=(KEY, "other-key"))
    app = create_app(settings, engine_factory=lambda _: fake, store=store)
    with TestClient(app, headers={"Authorization": f"Bearer {KEY}"}) as client:
        store._rows[old.id], store._leases[old.id] = old, None
        assert client.get("/v1/responses/resp_old", headers=OTHER).status_code == 404
        assert client.get("/v1/responses/resp_old").status_code == 200
        r = client.post("/v1/responses", json={"model": M, "input": "which?", "previous_response_id": "resp_old"})
        assert r.status_code == 200, r.text
        assert "remember the number 7" in "".join(map(chr, fake.requests[-1][1]))
        assert client.get("/v1/responses/resp_old", headers=OTHER).status_code == 404
    assert legacy_tenant(KEY) not in _tenants_of(store)


async def test_cache_salts_differ_between_tenants_and_repeat_within_one() -> None:
    store = MemoryStore()
    await store.open()
    tenants = await Tenants.open(store)
    a, b = tenants.of("key-a"), tenants.of("key-b")
    assert tenants.cache_salt(a) == tenants.cache_salt(tenants.of("key-a"))
    assert len({tenants.cache_salt(a), tenants.cache_salt(b), tenants.cache_salt("")}) == 3
    assert tenants.cache_salt(a) not in (a, "key-a")
    other_store = MemoryStore()
    await other_store.open()
    assert (await Tenants.open(other_store)).cache_salt(a) != tenants.cache_salt(a)  # keyed by the store's secret


def test_each_request_carries_its_tenants_salt(client: TestClient, fake: FakeEngine) -> None:
    for headers in ({}, OTHER, {}):
        assert (
            client.post("/v1/responses", json={"model": M, "input": "same prompt"}, headers=headers).status_code == 200
        )
    mine, theirs, mine_again = (p.cache_salt for p in fake.placements)
    assert mine and theirs and mine == mine_again != theirs
