"""Store benchmark: load 100,000 responses into SQLite and PostgreSQL, then time get/chain lookups.

    .venv/bin/python bench/store_bench.py [--pg postgresql://postgres@127.0.0.1:5432/postgres]

The PostgreSQL URL comes from --pg, else VRESPONSES_BENCH_PG_URL, else VRESPONSES_TEST_PG_URL; the bench
runs in a throwaway database it creates there and drops afterwards (PostgreSQL is skipped if unreachable).
Bulk loading goes straight to the table with executemany; lookups and the per-request insert use SqlStore.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from vresponses.store import COMPLETED, IN_PROGRESS, StoredResponse
from vresponses.store.schema import responses
from vresponses.store.sql import SqlStore

PROSE = (
    "the model answered with a short summary of quarterly revenue growth across regions and noted that "
    "inventory levels fell while customer retention improved function call weather forecast tool output "
    "json schema streaming tokens latency throughput cache prefix conversation history assistant user"
)
TENANTS = [f"tenant_{i:02d}" for i in range(20)]
BATCH = 2_000


def _texts(rng: random.Random, n: int, words: int) -> list[str]:
    vocabulary = PROSE.split()
    return [" ".join(rng.choices(vocabulary, k=words)) for _ in range(n)]


def generate(rows: int, seed: int) -> Iterator[list[dict[str, Any]]]:
    """Batches of rows forming chains of 1-10 turns, with ~2 KB bodies of text-like JSON."""
    rng = random.Random(seed)
    # A pool of paragraphs recombined per row: realistic text (PostgreSQL compresses it as it would real
    # bodies) without paying for 100k fresh random strings.
    paragraphs = _texts(rng, 400, 45)
    batch: list[dict[str, Any]] = []
    made, t0 = 0, 1_700_000_000.0
    while made < rows:
        tenant, prev = rng.choice(TENANTS), None
        for _ in range(min(rng.randint(1, 10), rows - made)):
            rid = f"resp_{made:08d}"
            text = " ".join(rng.choices(paragraphs, k=6))
            user = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text[:300]}]}
            out = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}
            body = {"id": rid, "object": "response", "status": COMPLETED, "model": "bench", "output": [out]}
            batch.append(
                {
                    "id": rid,
                    "tenant": tenant,
                    "previous_response_id": prev,
                    "status": COMPLETED,
                    "created_at": t0 + made,
                    "updated_at": t0 + made,
                    "lease_until": None,
                    "cancel_requested": False,
                    "input_items": json.dumps([user]).encode(),
                    "output_items": json.dumps([out]).encode(),
                    "body": json.dumps(body).encode(),
                }
            )
            prev, made = rid, made + 1
            if len(batch) == BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


async def timed(calls: list[Callable[[], Awaitable[object]]]) -> list[float]:
    """Milliseconds taken by each call, run one after another."""
    out = []
    for call in calls:
        start = time.perf_counter()
        await call()
        out.append((time.perf_counter() - start) * 1000)
    return out


def pct(samples: list[float], q: float) -> float:
    """The q-th percentile (0-100) of samples."""
    return statistics.quantiles(samples, n=100, method="inclusive")[int(q) - 1] if q < 100 else max(samples)


async def bench(url: str, rows: int, lookups: int, seed: int) -> dict[str, float]:
    """Load `rows` rows into a fresh store at url and measure it; returns metric name -> value."""
    store = SqlStore(url)
    await store.open()
    result: dict[str, float] = {}
    try:
        ids: list[tuple[str, str]] = []
        start = time.perf_counter()
        for batch in generate(rows, seed):
            async with store.engine.begin() as conn:
                await conn.execute(responses.insert(), batch)
            ids.extend((r["id"], r["tenant"]) for r in batch)
        result["bulk load, rows/s"] = rows / (time.perf_counter() - start)

        rng = random.Random(seed + 1)
        sample = [rng.choice(ids) for _ in range(lookups)]
        get_ms = await timed([partial(store.get, rid, t) for rid, t in sample])
        chains: list[int] = []

        async def chain(rid: str, tenant: str) -> None:
            got = await store.chain(rid, tenant)
            assert got is not None and got[-1].id == rid, rid
            chains.append(len(got))

        chain_ms = await timed([partial(chain, rid, t) for rid, t in sample])
        template = {k: v for k, v in next(generate(1, seed))[0].items() if k != "lease_until"}
        single = [
            StoredResponse(**{**template, "id": f"single_{i}", "status": IN_PROGRESS, "created_at": 0.0})
            for i in range(min(lookups, 500))
        ]
        insert_ms = await timed([partial(store.insert, r, lease_until=1.0) for r in single])
        expire_ms = await timed([partial(store.expire_leases, 2.0)])
        # The expired singles are the oldest rows, so this removes them and the 1,000 oldest loaded ones.
        prune_ms = await timed([partial(store.prune, None, rows - 1_000)])

        for name, samples in (("get", get_ms), ("chain", chain_ms), ("insert (1 row, 1 txn)", insert_ms)):
            result[f"{name} p50 ms"] = pct(samples, 50)
            result[f"{name} p99 ms"] = pct(samples, 99)
        result["chain mean length"] = statistics.fmean(chains)
        result[f"expire_leases ({len(single)} rows) ms"] = expire_ms[0]
        result[f"prune {len(single) + 1_000:,} oldest ms"] = prune_ms[0]
        result["rows after prune"] = await store.count()
    finally:
        await store.close()
    return result


async def _admin(admin_url: str, sql: str) -> None:
    conn = await asyncpg.connect(make_url(admin_url).set(drivername="postgresql").render_as_string(False), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    env_pg = os.environ.get("VRESPONSES_BENCH_PG_URL") or os.environ.get("VRESPONSES_TEST_PG_URL")
    parser.add_argument("--pg", default=env_pg, help="PostgreSQL admin URL (default: $VRESPONSES_BENCH_PG_URL)")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="store_bench_") as tmp:
        print(f"sqlite: loading {args.rows:,} rows ...", file=sys.stderr)
        results["sqlite"] = await bench(f"sqlite:///{Path(tmp) / 'bench.db'}", args.rows, args.lookups, args.seed)

    if not args.pg:
        print("postgresql: skipped (give --pg or set VRESPONSES_BENCH_PG_URL; see .ci/postgres.sh)", file=sys.stderr)
    else:
        name = f"vresponses_bench_{uuid.uuid4().hex[:8]}"
        try:
            await _admin(args.pg, f'CREATE DATABASE "{name}"')
        except (OSError, asyncpg.PostgresError) as exc:
            print(f"postgresql: skipped, cannot create a database at {args.pg}: {exc}", file=sys.stderr)
        else:
            try:
                print(f"postgresql: loading {args.rows:,} rows ...", file=sys.stderr)
                url = make_url(args.pg).set(database=name).render_as_string(hide_password=False)
                results["postgresql"] = await bench(url, args.rows, args.lookups, args.seed)
            finally:
                await _admin(args.pg, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    backends = list(results)
    metrics = list(results[backends[0]])
    width = max(map(len, metrics))
    print(f"{'metric':<{width}}  " + "  ".join(f"{b:>12}" for b in backends))
    for m in metrics:
        print(f"{m:<{width}}  " + "  ".join(f"{results[b][m]:>12,.2f}" for b in backends))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
