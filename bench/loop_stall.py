"""Measure how long one hostile request stalls the event loop: an ~8 MB body of ~60k short assistant items.

The app runs in this process on the scripted engine, but with the embedded model's real tokenizer and chat
template (tokenizing is part of the cost), and a probe task that wakes every 5 ms records how late it woke.
The worst lateness is how long every other stream on the server would have frozen.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx

from vresponses.app import create_app
from vresponses.engines.base import ModelInfo
from vresponses.engines.fake import FakeEngine
from vresponses.models.prepare import default_model_dir
from vresponses.settings import Settings, default_home
from vresponses.store.memory import MemoryStore

MODEL = "SmolLM2-135M-Instruct"


def hostile_body(items: int, text: int) -> bytes:
    """A create body of `items` assistant messages of `text` characters each."""
    one = {"role": "assistant", "content": "x" * text}
    return json.dumps({"model": MODEL, "input": [one] * items}).encode()


async def probe(stop: asyncio.Event, lateness: list[float], period: float = 0.005) -> None:
    """Sleep `period` again and again, recording how much later than asked each wake-up came."""
    while not stop.is_set():
        asked = time.perf_counter()
        await asyncio.sleep(period)
        lateness.append(time.perf_counter() - asked - period)


async def measure(body: bytes, tokenizer: Any) -> dict[str, Any]:
    """Send the body once through the in-process app; return status, wall time and the worst stall."""
    engine = FakeEngine(info=ModelInfo(name=MODEL, max_model_len=8192), tokenizer=tokenizer)
    settings = Settings(api_keys=(), max_body_bytes=len(body) + 1)
    app = create_app(settings, engine_factory=lambda _: engine, store=MemoryStore())
    transport = httpx.ASGITransport(app=app)
    client = httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=None)
    async with app.router.lifespan_context(app), client:
        stop = asyncio.Event()
        lateness: list[float] = []
        prober = asyncio.create_task(probe(stop, lateness))
        await asyncio.sleep(0.05)
        start = time.perf_counter()
        r = await client.post("/v1/responses", content=body, headers={"content-type": "application/json"})
        wall = time.perf_counter() - start
        stop.set()
        await prober
    error = r.json().get("error", {}) if r.status_code >= 400 else {}
    return {
        "status": r.status_code,
        "param": error.get("param"),
        "wall_s": round(wall, 3),
        "worst_stall_ms": round(max(lateness) * 1000, 1),
        "message": (error.get("message") or "")[:120],
    }


def main() -> None:
    """Print one JSON line per run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=60_000)
    parser.add_argument("--text", type=int, default=100)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    from transformers import AutoTokenizer

    model_dir = Path(default_model_dir(default_home()))
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    body = hostile_body(args.items, args.text)
    for _ in range(args.runs):
        result = asyncio.run(measure(body, tokenizer))
        print(json.dumps({"body_bytes": len(body), "items": args.items, **result}), flush=True)


if __name__ == "__main__":
    main()
