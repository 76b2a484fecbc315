"""Scale bench: simulated vLLM replicas, front ends sharing PostgreSQL, many concurrent streaming conversations.

    make bench-scale                                    # 8 replicas, 2 front ends, 2,000 conversations
    python bench/scale_bench.py --conversations 200 --turns 3 [--pg postgresql://...]

Three phases over the same workload (every conversation runs its turns one after another, all conversations at
once): `direct` calls the replicas itself (each conversation pinned to one replica, prompts as token ids: perfect
cache reuse, no front end); `cache-aware` and `round-robin` go through the front ends (turn t of conversation c
goes to front end (c + t) mod M, so affinity must come from the shared store).

Front-end overhead of a request = (its arrival at the replica - the client's send) + (the client's first token -
the replica's send of it), minus the same two legs measured in the direct phase: the replica's own queueing and
prefill drop out, and time.monotonic() is one clock for every process on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import msgspec
from sqlalchemy.engine import make_url

from vresponses.engines.wire import SSELines

ROOT = Path(__file__).resolve().parent.parent
MODEL = "SmolLM2-135M-Instruct"
WORDS = [
    *("the", "a", "river", "stone", "light", "quiet", "north", "garden"),
    *("paper", "signal", "window", "orange", "music", "number", "city", "winter"),
]


@dataclass
class Turn:
    """One request as the client saw it."""

    request_id: str = ""
    sent: float = 0.0
    first: float | None = None
    done: float = 0.0
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    error: str | None = None


@dataclass
class Phase:
    """One phase's turns, wall time, replica-side timings and front-end readings."""

    name: str
    turns: list[Turn] = field(default_factory=list)
    wall: float = 0.0
    timings: dict[str, tuple[float, float]] = field(default_factory=dict)
    index_bytes: list[float] = field(default_factory=list)
    index_blocks: list[float] = field(default_factory=list)
    front_cpu: float = 0.0

    @property
    def ok(self) -> list[Turn]:
        return [t for t in self.turns if t.error is None and t.first is not None]

    def legs(self) -> list[float]:
        """Per request: time spent outside the replica before its first token reached the client (ms)."""
        out = []
        for t in self.ok:
            replica = self.timings.get(t.request_id)
            if replica is not None and t.first is not None:
                out.append(((replica[0] - t.sent) + (t.first - replica[1])) * 1000)
        return out

    @property
    def tokens_per_s(self) -> float:
        return sum(t.output_tokens for t in self.ok) / self.wall if self.wall else 0.0

    @property
    def cached_ratio(self) -> float:
        prompt = sum(t.input_tokens for t in self.ok)
        return sum(t.cached_tokens for t in self.ok) / prompt if prompt else 0.0


class _Delta(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    delta: _Delta | None = None


class _Details(msgspec.Struct):
    cached_tokens: int = 0


class _Usage(msgspec.Struct):
    input_tokens: int = 0
    output_tokens: int = 0
    input_tokens_details: _Details | None = None
    # vLLM's names, for the direct phase
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_tokens_details: _Details | None = None


class _Chunk(msgspec.Struct):
    id: str = ""
    choices: list[_Choice] = []
    usage: _Usage | None = None


_DECODE = msgspec.json.Decoder(_Chunk)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


async def front_conversation(
    client: httpx.AsyncClient, fronts: list[str], c: int, args: argparse.Namespace, nonce: str
) -> list[Turn]:
    """One conversation through the front ends: each turn continues the previous by previous_response_id."""
    rng = random.Random(f"{nonce}-{c}")
    previous: str | None = None
    turns = []
    for t in range(args.turns):
        body: dict[str, object] = {
            "model": MODEL,
            "input": f"{nonce} {c} {t}: {sentence(rng, args.user_words)}",
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_output_tokens": args.output_tokens + 8,
        }
        if previous:
            body["previous_response_id"] = previous
        turn = Turn(sent=time.monotonic())
        try:
            async with client.stream("POST", fronts[(c + t) % len(fronts)] + "/v1/responses", json=body) as r:
                if r.status_code != 200:
                    turn.error = f"HTTP {r.status_code}"
                else:
                    await _read_stream(r, turn, front=True)
        except httpx.HTTPError as exc:
            turn.error = type(exc).__name__
        turn.done = time.monotonic()
        turns.append(turn)
        if turn.error:
            break
        previous = turn.request_id
    return turns


async def direct_conversation(
    client: httpx.AsyncClient, replicas: list[str], c: int, args: argparse.Namespace, nonce: str
) -> list[Turn]:
    """The same shape of conversation straight to one replica, as token ids (the baseline)."""
    rng = random.Random(f"{nonce}-{c}")
    prompt = [rng.randrange(3, 40000) for _ in range(30)]
    url = replicas[c % len(replicas)]
    turns = []
    for t in range(args.turns):
        prompt += [rng.randrange(3, 40000) for _ in range(args.user_words + 8)]
        rid = f"direct-{nonce}-{c}-{t}"
        body = {
            "request_id": rid,
            "token_ids": prompt,
            "sampling_params": {"max_tokens": args.output_tokens + 8, "temperature": 1.0},
            "stream": True,
            "stream_options": {"include_usage": True},
            "output_mode": "text",
        }
        turn = Turn(request_id=rid, sent=time.monotonic())
        try:
            async with client.stream("POST", url + "/inference/v1/generate", json=body) as r:
                await _read_stream(r, turn, front=False)
        except httpx.HTTPError as exc:
            turn.error = type(exc).__name__
        turn.done = time.monotonic()
        turns.append(turn)
        prompt += [1000 + i for i in range(turn.output_tokens)] + [2, 198]
    return turns


async def _read_stream(r: httpx.Response, turn: Turn, front: bool) -> None:
    # The client must not be the bottleneck: decode only what it measures (the id, the first token, the usage).
    lines = SSELines()
    async for data in r.aiter_bytes():
        for payload in lines.feed(data):
            if turn.first is not None and b'"usage":{' not in payload:
                continue
            if payload == b"[DONE]":
                continue
            chunk = _DECODE.decode(payload)
            if front and not turn.request_id:
                turn.request_id = chunk.id
            if turn.first is None and (
                any(ch.delta and ch.delta.content for ch in chunk.choices) if front else chunk.choices
            ):
                turn.first = time.monotonic()
            if chunk.usage is not None:
                u = chunk.usage
                details = u.input_tokens_details or u.prompt_tokens_details
                turn.input_tokens = u.input_tokens or u.prompt_tokens
                turn.output_tokens = u.output_tokens or u.completion_tokens
                turn.cached_tokens = details.cached_tokens if details else 0
    if turn.first is None:
        turn.error = "no token"


async def run_phase(name: str, targets: list[str], replicas: list[str], args: argparse.Namespace) -> Phase:
    """Drive every conversation at once and collect the replicas' timings afterwards."""
    phase = Phase(name)
    nonce = uuid.uuid4().hex[:8]
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=args.conversations, keepalive_expiry=4.0)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(600.0, connect=30.0)) as client:
        drive = direct_conversation if name == "direct" else front_conversation
        start = time.monotonic()
        results = await asyncio.gather(*(drive(client, targets, c, args, nonce) for c in range(args.conversations)))
        phase.wall = time.monotonic() - start
        phase.turns = [t for conversation in results for t in conversation]
        for url in replicas:
            phase.timings.update(msgspec.json.decode((await client.get(url + "/sim/timings")).content))
            await client.post(url + "/sim/reset")
        if name != "direct":
            for url in targets:
                text = (await client.get(url + "/metrics")).text
                phase.index_bytes.append(_metric(text, "vresponses_router_index_bytes"))
                phase.index_blocks.append(_metric(text, "vresponses_router_index_blocks"))
    return phase


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(match[1]) if match else float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with log.open("ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


async def wait_healthy(url: str, proc: subprocess.Popen[bytes], seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{url}: process exited with {proc.returncode}")
            try:
                if (await client.get(url + "/health", timeout=2)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not become healthy in {seconds}s")


async def admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(False), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def front_phase(name: str, replicas: list[str], store: str, args: argparse.Namespace, logs: Path) -> Phase:
    """Start the front ends with this routing, run the workload through them, stop them."""
    fronts, procs = [], []
    engine_args = [a for url in replicas for a in ("--engine-url", url)]
    try:
        for i in range(args.frontends):
            port = args.port + 100 + i
            cmd = [sys.executable, "-m", "vresponses", "serve", "--port", str(port), "--store", store]
            cmd += [*engine_args, "--routing", name, "--log-level", "warning"]
            # This measures routing, not admission: every conversation may be in flight on one front end at once.
            cmd += ["--max-concurrent-requests", str(args.conversations)]
            cmd += ["--max-queued-prompt-tokens", str(args.conversations * 4096)]
            procs.append(start(cmd, logs / f"front-{name}-{i}.log"))
            fronts.append(f"http://127.0.0.1:{port}")
            # One at a time: the first applies the store's migrations.
            await wait_healthy(fronts[-1], procs[-1])
        cpu_before = sum(cpu_seconds(p.pid) for p in procs)
        phase = await run_phase(name, fronts, replicas, args)
        phase.front_cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu_before
        return phase
    finally:
        for proc in procs:
            stop(proc)


def report(direct: Phase, aware: Phase, rr: Phase, args: argparse.Namespace) -> None:
    base = direct.legs()
    base50, base99 = percentile(base, 50), percentile(base, 99)
    capacity = args.replicas * args.max_running / (args.decode_ms / 1000)
    print(
        f"\nscale bench: {args.replicas} simulated replicas ({args.max_running} slots, "
        f"decode {args.decode_ms} ms/token, prefill {args.prefill_us} us/uncached token, "
        f"cache {args.cache_blocks} blocks of 16), {args.frontends} front ends on PostgreSQL, "
        f"{args.conversations} concurrent streaming conversations x {args.turns} turns "
        f"({args.user_words} words in, {args.output_tokens} tokens out); load average before: {args.load:.1f}\n"
    )
    rows = [("phase", "requests ok", "legs p50 ms", "legs p99 ms", "overhead p50", "overhead p99", "tokens/s",
             "vs direct", "cached ratio", "index", "front CPU s")]  # fmt: skip
    for p in (direct, aware, rr):
        legs = p.legs()
        front = p is not direct
        index = (
            f"{max(p.index_bytes) / 1e6:.2f} MB / {int(max(p.index_blocks))} blocks" if front and p.index_bytes else "-"
        )
        rows.append(
            (
                p.name,
                f"{len(p.ok)}/{len(p.turns)}",
                f"{percentile(legs, 50):.2f}",
                f"{percentile(legs, 99):.2f}",
                f"{percentile(legs, 50) - base50:+.2f} ms" if front else "-",
                f"{percentile(legs, 99) - base99:+.2f} ms" if front else "-",
                f"{p.tokens_per_s:.0f}",
                f"{p.tokens_per_s / direct.tokens_per_s:.2f}" if direct.tokens_per_s else "-",
                f"{p.cached_ratio:.3f}",
                index,
                f"{p.front_cpu:.1f}" if front else "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)))
    print(
        f"\nreplicas' sum (theoretical, all slots decoding): {capacity:.0f} tokens/s; direct reached "
        f"{direct.tokens_per_s / capacity:.2f} of it, cache-aware {aware.tokens_per_s / capacity:.2f}"
    )
    for p in (direct, aware, rr):
        errors = Counter(t.error for t in p.turns if t.error)
        if errors:
            print(f"{p.name} errors: " + ", ".join(f"{n} x {e}" for e, n in errors.most_common()))
    print(
        f"cached-token ratio cache-aware / round-robin: {aware.cached_ratio / rr.cached_ratio:.2f}"
        if rr.cached_ratio
        else "round-robin cached nothing"
    )


def postgres(given: str | None) -> str:
    """The PostgreSQL URL: --pg, else $VRESPONSES_TEST_PG_URL, else the one .ci/postgres.sh ensures."""
    if given or os.environ.get("VRESPONSES_TEST_PG_URL"):
        return given or os.environ["VRESPONSES_TEST_PG_URL"]
    out = subprocess.run(["bash", str(ROOT / ".ci/postgres.sh")], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


async def main(args: argparse.Namespace, pg: str, logs: Path) -> None:
    database = f"vr_scale_{uuid.uuid4().hex[:8]}"
    await admin(pg, f'CREATE DATABASE "{database}"')
    store = make_url(pg).set(database=database).render_as_string(hide_password=False)
    sim_cmd = [sys.executable, str(ROOT / "bench/replica_sim.py"), "--replicas", str(args.replicas)]
    sim_cmd += [
        "--port",
        str(args.port),
        "--max-running",
        str(args.max_running),
        "--cache-blocks",
        str(args.cache_blocks),
    ]
    sim_cmd += ["--decode-s", str(args.decode_ms / 1000), "--prefill-s", str(args.prefill_us / 1e6)]
    sim_cmd += ["--output-tokens", str(args.output_tokens), "--model", MODEL]
    sim = start(sim_cmd, logs / "replicas.log")
    replicas = [f"http://127.0.0.1:{args.port + i}" for i in range(args.replicas)]
    try:
        for url in replicas:
            await wait_healthy(url, sim)
        args.load = os.getloadavg()[0]
        print(f"direct: {args.conversations} conversations ...", file=sys.stderr)
        direct = await run_phase("direct", replicas, replicas, args)
        print("cache-aware ...", file=sys.stderr)
        aware = await front_phase("cache-aware", replicas, store, args, logs)
        print("round-robin ...", file=sys.stderr)
        rr = await front_phase("round-robin", replicas, store, args, logs)
        report(direct, aware, rr, args)
    finally:
        stop(sim)
        await admin(pg, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, default=8)
    parser.add_argument("--frontends", type=int, default=2)
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--user-words", type=int, default=40)
    parser.add_argument("--output-tokens", type=int, default=16)
    # Latency model sized so that 8 replicas at full load (640 tokens/s) stay within what two shared cores can stream
    # through the simulator, the front ends and the client at once; raise these on a bigger machine.
    parser.add_argument("--max-running", type=int, default=16, help="each replica's concurrency limit")
    parser.add_argument("--decode-ms", type=float, default=200.0, help="per output token")
    parser.add_argument("--prefill-us", type=float, default=500.0, help="per uncached prompt token")
    parser.add_argument("--cache-blocks", type=int, default=16384, help="each replica's prefix cache (16-token blocks)")
    parser.add_argument("--port", type=int, default=19300, help="first replica port; front ends from port + 100")
    parser.add_argument("--pg", default=None, help="PostgreSQL URL (default: $VRESPONSES_TEST_PG_URL, else .ci)")
    parser.add_argument("--logs", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "vresponses-scale-bench"))
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse()
    log_dir = Path(arguments.logs)
    log_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(arguments, postgres(arguments.pg), log_dir))
