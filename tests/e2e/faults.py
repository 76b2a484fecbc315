"""Fault and load scenarios against a real server, each returning its figures: shared by the e2e tests (which assert
on them) and `make soak` (which prints them)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import signal
import sqlite3
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.server import Server, gauge

MODEL = "SmolLM2-135M-Instruct"
ADMITTED_GAUGE = "vresponses_admitted_requests"
LONG = "Write a very long story about a lighthouse keeper and the sea, chapter by chapter."


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of values, or 0 for none."""
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[max(0, min(98, round(q) - 1))]


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def descendants(pid: int) -> list[int]:
    """Every live process below pid (engine core, its workers, helpers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return [p for p in found if alive(p)]


def niceness(pid: int) -> set[int]:
    """The nice values of every thread of one process."""
    values = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            values.add(int((task / "stat").read_text().rsplit(")", 1)[1].split()[16]))
        except (OSError, IndexError, ValueError):
            continue
    return values


def engine_core(server_pid: int) -> int:
    """The pid of the server's vLLM engine core process."""
    for pid in descendants(server_pid):
        try:
            if b"EngineCore" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    raise AssertionError("no engine core process below the server")


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No garbage collection in this (the client's) process inside the block: a full collection here stops every
    client at once for ~0.1 s, which would be timed as the server's latency."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def rss_mb(pid: int) -> float:
    """Resident memory of one process in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def body(text: str, max_tokens: int, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "input": text, "max_output_tokens": max_tokens, "temperature": 0, **extra}


# -- streams ---------------------------------------------------------------------------------------------------------


@dataclass
class Stream:
    """One streaming request as the client saw it."""

    opened: asyncio.Event = field(default_factory=asyncio.Event)
    lines: list[str] = field(default_factory=list)
    ended_at: float = 0.0
    status: int = 0

    @property
    def last(self) -> str:
        return self.lines[-1] if self.lines else ""

    @property
    def done(self) -> bool:
        """Ended with [DONE] after a finish_reason."""
        return self.last == "data: [DONE]"

    @property
    def errored(self) -> bool:
        """Ended with the dialect's error event."""
        return self.last.startswith("data: {") and '"error"' in self.last

    @property
    def response_id(self) -> str | None:
        for line in self.lines:
            if line.startswith("data: {"):
                return str(json.loads(line[6:]).get("id")) or None
        return None


async def open_stream(client: httpx.AsyncClient, url: str, key: str, request: dict[str, Any], out: Stream) -> None:
    """Stream one request into `out`, marking it opened at its first line."""
    async with client.stream(
        "POST", url + "/v1/responses", json={**request, "stream": True}, headers=headers(key)
    ) as r:
        out.status = r.status_code
        async for line in r.aiter_lines():
            if line:
                out.lines.append(line)
                out.opened.set()
    out.ended_at = time.monotonic()
    out.opened.set()


async def open_streams(
    client: httpx.AsyncClient, url: str, key: str, requests: list[dict[str, Any]]
) -> tuple[list[Stream], list[asyncio.Task[None]]]:
    """Open every stream and wait until each has its first chunk (the engine is generating for all of them)."""
    streams = [Stream() for _ in requests]
    tasks = [
        asyncio.create_task(open_stream(client, url, key, req, s)) for req, s in zip(requests, streams, strict=True)
    ]
    async with asyncio.timeout(300):
        await asyncio.gather(*(s.opened.wait() for s in streams))
    refused = [s.last for s in streams if s.status != 200]
    assert not refused, f"{len(refused)} streams were not admitted: {refused[0][:200]}"
    return streams, tasks


# -- overload --------------------------------------------------------------------------------------------------------


@dataclass
class LoadFigures:
    """What `overload` measured."""

    seconds: float
    clients: int
    statuses: Counter[int]
    refusal_ms: list[float]
    # Refusals on a connection already open (each client's first request also pays for its TCP connection).
    steady_refusal_ms: list[float]
    refusals_without_retry_after: int
    served_ms: list[float]
    health_ms: list[float]
    health_not_ok: int
    rss_before_mb: float
    rss_after_mb: float

    def summary(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 1),
            "clients": self.clients,
            "statuses": dict(self.statuses),
            "429_ms_p50/p99/max": [round(percentile(self.refusal_ms, q), 1) for q in (50, 99)]
            + [round(max(self.refusal_ms, default=0), 1)],
            "429_open_connection_ms_p50/p99/max": [round(percentile(self.steady_refusal_ms, q), 1) for q in (50, 99)]
            + [round(max(self.steady_refusal_ms, default=0), 1)],
            "429_without_retry_after": self.refusals_without_retry_after,
            "served_ms_p50/p99": [round(percentile(self.served_ms, q)) for q in (50, 99)],
            "health_ms_p50/p99/max": [round(percentile(self.health_ms, q), 1) for q in (50, 99)]
            + [round(max(self.health_ms, default=0), 1)],
            "health_not_200": self.health_not_ok,
            "server_rss_mb_before/after": [round(self.rss_before_mb), round(self.rss_after_mb)],
        }


async def overload(url: str, key: str, server_pid: int, clients: int, seconds: float) -> LoadFigures:
    """`clients` clients, arriving over the first second, each keep one short request outstanding, waiting out
    Retry-After after a refusal as the SDKs do, while /health is probed every 20 ms."""
    statuses: Counter[int] = Counter()
    refusal_ms: list[float] = []
    steady_refusal_ms: list[float] = []
    served_ms: list[float] = []
    health_ms: list[float] = []
    missing_retry_after = health_not_ok = 0
    rss_before = rss_mb(server_pid)

    # One client per user, each keeping its connection open, all made before the clock starts: making an httpx client
    # loads the CA bundle (~40 ms of this loop's time each), which inside the ramp would be timed as the server's.
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(httpx.AsyncClient(timeout=120))
        own_clients = [await stack.enter_async_context(httpx.AsyncClient(timeout=120)) for _ in range(clients)]
        deadline = time.monotonic() + seconds

        async def user(i: int) -> None:
            nonlocal missing_retry_after
            # Clients arrive over the first second, as load ramps up, rather than as one thundering herd.
            await asyncio.sleep(i / clients)
            first = True
            own = own_clients[i]
            while time.monotonic() < deadline:
                began = time.perf_counter()
                request = body(f"Count to ten, {i}.", 24)
                r = await own.post(url + "/v1/responses", json=request, headers=headers(key))
                elapsed = (time.perf_counter() - began) * 1000
                statuses[r.status_code] += 1
                if r.status_code == 429:
                    refusal_ms.append(elapsed)
                    if not first:
                        steady_refusal_ms.append(elapsed)
                    missing_retry_after += "retry-after" not in r.headers
                    await asyncio.sleep(float(r.headers.get("retry-after", 1)))
                elif r.status_code == 200:
                    served_ms.append(elapsed)
                first = False

        async def prober() -> None:
            nonlocal health_not_ok
            while time.monotonic() < deadline:
                began = time.perf_counter()
                r = await client.get(url + "/health")
                health_ms.append((time.perf_counter() - began) * 1000)
                health_not_ok += r.status_code != 200
                await asyncio.sleep(0.02)

        began = time.monotonic()
        with collector_paused():
            await asyncio.gather(prober(), *(user(i) for i in range(clients)))
    return LoadFigures(
        seconds=time.monotonic() - began,
        clients=clients,
        statuses=statuses,
        refusal_ms=refusal_ms,
        steady_refusal_ms=steady_refusal_ms,
        refusals_without_retry_after=missing_retry_after,
        served_ms=served_ms,
        health_ms=health_ms,
        health_not_ok=health_not_ok,
        rss_before_mb=rss_before,
        rss_after_mb=rss_mb(server_pid),
    )


# -- a frozen engine -------------------------------------------------------------------------------------------------


@dataclass
class FrozenFigures:
    """What `frozen_engine` measured."""

    admitted: int
    refusal_statuses: Counter[int]
    refusal_ms: list[float]
    health_status: int
    health_ms: float
    admitted_statuses: Counter[int]

    def summary(self) -> dict[str, Any]:
        return {
            "admitted": self.admitted,
            "refusal_statuses": dict(self.refusal_statuses),
            "429_ms_p50/max": [round(percentile(self.refusal_ms, 50), 1), round(max(self.refusal_ms, default=0), 1)],
            "health": [self.health_status, round(self.health_ms, 1)],
            "admitted_after_thaw": dict(self.admitted_statuses),
        }


async def frozen_engine(url: str, key: str, server_pid: int, admitted: int, extra: int) -> FrozenFigures:
    """SIGSTOP the engine core, fill every admitted slot, then send `extra` more requests and /health: each is
    answered while the engine cannot make a step, so nothing in them waits on it. The engine is resumed at the end."""
    core = engine_core(server_pid)
    os.kill(core, signal.SIGSTOP)
    try:
        async with contextlib.AsyncExitStack() as stack:
            held = await stack.enter_async_context(httpx.AsyncClient(timeout=300))
            # A refusal that waited on the engine would wait for good: the timeout turns that into a failure.
            quick = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
            holders = [
                asyncio.create_task(held.post(url + "/v1/responses", json=body(f"Say {i}.", 4), headers=headers(key)))
                for i in range(admitted)
            ]
            deadline = time.monotonic() + 60
            while gauge((await quick.get(url + "/metrics", headers=headers(key))).text, ADMITTED_GAUGE) < admitted:
                assert time.monotonic() < deadline, "the requests were never all admitted"
                await asyncio.sleep(0.1)

            async def timed(coro: Any) -> tuple[int, float]:
                began = time.perf_counter()
                r = await coro
                return r.status_code, (time.perf_counter() - began) * 1000

            with collector_paused():
                refused = await asyncio.gather(
                    *(
                        timed(quick.post(url + "/v1/responses", json=body("More?", 4), headers=headers(key)))
                        for _ in range(extra)
                    )
                )
                health_status, health_ms = await timed(quick.get(url + "/health"))
            os.kill(core, signal.SIGCONT)
            done = await asyncio.gather(*holders)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(core, signal.SIGCONT)
    return FrozenFigures(
        admitted=admitted,
        refusal_statuses=Counter(status for status, _ in refused),
        refusal_ms=[ms for _, ms in refused],
        health_status=health_status,
        health_ms=health_ms,
        admitted_statuses=Counter(r.status_code for r in done),
    )


# -- engine death ----------------------------------------------------------------------------------------------------


@dataclass
class KillFigures:
    """What `kill_engine` measured."""

    streams_errored: int
    streams_total: int
    stream_end_s: list[float]
    health_503_after_s: float
    background_statuses: list[str]
    background_errors: list[str]
    stored_intact: bool
    orphans: list[int]
    recovered_after_s: float
    after_recovery_status: str

    def summary(self) -> dict[str, Any]:
        return {
            "streams_ended_with_error_event": f"{self.streams_errored}/{self.streams_total}",
            "stream_end_s_p50/max": [round(percentile(self.stream_end_s, 50), 2), round(max(self.stream_end_s), 2)],
            "health_503_after_s": round(self.health_503_after_s, 2),
            "background": self.background_statuses,
            "stored_intact": self.stored_intact,
            "orphaned_engine_processes": self.orphans,
            "recovered_after_s": round(self.recovered_after_s, 1),
            "after_recovery": self.after_recovery_status,
        }


async def kill_engine(
    url: str, key: str, server_pid: int, streams: int = 16, background: int = 4, worker: bool = False
) -> KillFigures:
    """SIGKILL the engine core (or its worker) under open streams and background responses; watch every one end,
    then the recovery."""
    async with httpx.AsyncClient(timeout=300) as client:
        earlier = []
        for i in range(3):
            r = await client.post(url + "/v1/responses", json=body(f"Say hello {i}.", 8), headers=headers(key))
            assert r.status_code == 200, r.text
            earlier.append(r.json())
        jobs = []
        for i in range(background):
            r = await client.post(
                url + "/v1/responses", json=body(f"{LONG} {i}", 2000, background=True), headers=headers(key)
            )
            assert r.status_code == 200, r.text
            jobs.append(r.json()["id"])
        opened, tasks = await open_streams(client, url, key, [body(f"{LONG} #{i}", 2000) for i in range(streams)])
        core = engine_core(server_pid)
        engine_tree = [core, *descendants(core)]
        killed_at = time.monotonic()
        os.kill(engine_tree[-1] if worker else core, signal.SIGKILL)
        health_503 = 0.0
        while not health_503:
            if (await client.get(url + "/health")).status_code == 503:
                health_503 = time.monotonic() - killed_at
            else:
                await asyncio.sleep(0.01)
        async with asyncio.timeout(60):
            await asyncio.gather(*tasks)
        rows = await _wait_rows(client, url, key, jobs, {"failed", "completed", "incomplete", "cancelled"})
        intact = True
        for response in earlier:
            again = (await client.get(f"{url}/v1/responses/{response['id']}", headers=headers(key))).json()
            intact &= again.get("output") == response["output"] and again.get("status") == response["status"]
        orphan_deadline = time.monotonic() + 10
        while [p for p in engine_tree if alive(p)] and time.monotonic() < orphan_deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        orphans = [p for p in engine_tree if alive(p)]
        async with asyncio.timeout(900):
            while (await client.get(url + "/health")).status_code != 200:  # noqa: ASYNC110
                await asyncio.sleep(0.5)
        recovered = time.monotonic() - killed_at
        r = await client.post(url + "/v1/responses", json=body("Say hello.", 8), headers=headers(key))
    return KillFigures(
        streams_errored=sum(s.errored for s in opened),
        streams_total=len(opened),
        stream_end_s=[s.ended_at - killed_at for s in opened],
        health_503_after_s=health_503,
        background_statuses=[row["status"] for row in rows],
        background_errors=[(row.get("error") or {}).get("message", "") for row in rows],
        stored_intact=intact,
        orphans=orphans,
        recovered_after_s=recovered,
        after_recovery_status=f"{r.status_code} {r.json().get('status')}",
    )


async def _wait_rows(
    client: httpx.AsyncClient, url: str, key: str, ids: list[str], final: set[str]
) -> list[dict[str, Any]]:
    async with asyncio.timeout(60):
        while True:
            rows = [(await client.get(f"{url}/v1/responses/{rid}", headers=headers(key))).json() for rid in ids]
            if all(row.get("status") in final for row in rows):
                return rows
            await asyncio.sleep(0.2)


# -- SIGTERM ---------------------------------------------------------------------------------------------------------


@dataclass
class DrainFigures:
    """What `sigterm` measured."""

    streams_done: int
    streams_errored: int
    streams_total: int
    new_request_status: int
    health_status: int
    exit_code: int | None
    exit_after_s: float
    rows: dict[str, str]

    def summary(self) -> dict[str, Any]:
        return {
            "streams_finished/errored/total": [self.streams_done, self.streams_errored, self.streams_total],
            "new_request_during_drain": self.new_request_status,
            "health_during_drain": self.health_status,
            "exit_code": self.exit_code,
            "exit_after_s": round(self.exit_after_s, 1),
            "stored_statuses": sorted(Counter(self.rows.values()).items()),
        }


async def sigterm(url: str, key: str, server: Server, db: Path, short: int = 4, long: int = 4) -> DrainFigures:
    """SIGTERM the server under `short` streams that can finish within the drain and `long` ones that cannot."""
    async with httpx.AsyncClient(timeout=300) as client:
        requests = [body(f"Say yes {i}.", 4) for i in range(short)] + [body(f"{LONG} {i}", 2000) for i in range(long)]
        opened, tasks = await open_streams(client, url, key, requests)
        signalled = time.monotonic()
        server.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            while (health := await client.get(url + "/health")).status_code == 200:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        new = await client.post(url + "/v1/responses", json=body("hi", 4), headers=headers(key))
        async with asyncio.timeout(120):
            await asyncio.gather(*tasks)
    exit_code = await asyncio.to_thread(server.wait, 120)
    exit_after = time.monotonic() - signalled
    ids = [s.response_id for s in opened if s.response_id]
    with sqlite3.connect(db) as conn:
        found = dict(
            conn.execute(f"SELECT id, status FROM responses WHERE id IN ({','.join('?' * len(ids))})", ids).fetchall()
        )
    return DrainFigures(
        streams_done=sum(s.done for s in opened),
        streams_errored=sum(s.errored for s in opened),
        streams_total=len(opened),
        new_request_status=new.status_code,
        health_status=health.status_code,
        exit_code=exit_code,
        exit_after_s=exit_after,
        rows={rid: found.get(rid, "missing") for rid in ids},
    )


# -- SIGKILL of the server -------------------------------------------------------------------------------------------


def sigkill_server(server: Server) -> tuple[list[int], float, list[int]]:
    """SIGKILL the server process alone; return its engine processes, how long they took to go, and any left."""
    tree = descendants(server.pid)
    killed = time.monotonic()
    server.send_signal(signal.SIGKILL)
    server.wait(30)
    deadline = killed + 15
    while [p for p in tree if alive(p)] and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [p for p in tree if alive(p)]
    return tree, time.monotonic() - killed, left
