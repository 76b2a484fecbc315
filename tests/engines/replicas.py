"""Simulated replicas in-process (the bench simulator behind httpx's ASGI transport), and a RemoteEngine on them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from bench.replica_sim import SimConfig, SimReplica

from vresponses.engines.base import ModelInfo
from vresponses.engines.fake import FakeTokenizer
from vresponses.engines.remote import RemoteEngine, RemoteOptions
from vresponses.engines.router import Backoff, Router

URLS = ("http://replica-a:8000", "http://replica-b:8000")


class _Events(httpx.AsyncByteStream):
    """A buffered SSE body re-chunked mid-event (as a network splits it), optionally breaking after some events."""

    def __init__(self, stream: httpx.AsyncByteStream, cut_after: int | None) -> None:
        self.stream = stream
        self.cut_after = cut_after

    async def __aiter__(self) -> AsyncIterator[bytes]:
        body = b"".join([chunk async for chunk in self.stream])
        events = [e + b"\n\n" for e in body.split(b"\n\n") if e]
        for i, event in enumerate(events):
            if self.cut_after is not None and i >= self.cut_after:
                raise httpx.ReadError("connection reset by peer")
            yield event[:7]
            yield event[7:]

    async def aclose(self) -> None:
        await self.stream.aclose()


class Replicas(httpx.AsyncBaseTransport):
    """Routes by host to simulated replicas; a replica can be made unreachable or cut off mid-stream."""

    def __init__(self, sims: dict[str, SimReplica]) -> None:
        self.sims = sims
        self.apps = {url: httpx.ASGITransport(app=sim.app()) for url, sim in sims.items()}
        self.down: set[str] = set()
        self.cut_after: dict[str, int] = {}
        self.generates: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = f"{request.url.scheme}://{request.url.host}:{request.url.port}"
        if url in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.path.endswith("/generate"):
            self.generates.append(url)
        response = await self.apps[url].handle_async_request(request)
        if request.url.path.endswith("/generate"):
            assert isinstance(response.stream, httpx.AsyncByteStream)
            response.stream = _Events(response.stream, self.cut_after.get(url))
        return response


SIM = SimConfig(block_size=4, decode_s=0.0, prefill_s=0.0, output_tokens=6, max_model_len=2048)


def make_engine(transport: httpx.AsyncBaseTransport, router: Router | None = None) -> RemoteEngine:
    options = RemoteOptions(urls=URLS, model="unused", served_model_name="sim-model", backoff=Backoff(1.0, 8.0))
    info = ModelInfo(name="sim-model", max_model_len=4096)
    return RemoteEngine(options, FakeTokenizer(), info, transport=transport, router=router)


def simulated() -> Replicas:
    """Two fresh simulated replicas behind one transport."""
    return Replicas({url: SimReplica(SIM) for url in URLS})
