"""Runs vLLM's OpenAI server and vresponses one after the other on the same model and engine options, drives both
with the same streaming client, and compares throughput, TTFT and ITL; vresponses is measured in both its dialects
(Gradient chunks and OpenAI's semantic events). vresponses starts exactly as `make run` starts it.
Run: make bench (or python bench/serve_compare.py)"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

NAME = "SmolLM2-135M-Instruct"
ROOT = Path(__file__).resolve().parents[1]
HOME = Path(os.environ.get("VRESPONSES_HOME") or Path.home() / ".cache" / "vresponses")
DEFAULT_MODEL = HOME / "models" / NAME
PROMPT = "Write a long story about a dragon who learns to code."
TEMPERATURE = 0.7
# vLLM's server gets the engine environment `vresponses serve` sets for itself, so only the HTTP layer differs;
# vresponses gets nothing: it starts as `make run` starts it.
KEY = "bench-key"
VLLM_ENV = {"VLLM_CPU_NUM_OF_RESERVED_CPU": "0", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
SERVERS = ("vllm", "ours")
# Each vresponses run is measured in both dialects: the Gradient one under /v1, OpenAI's under /openai/v1.
SERIES = {"vllm": ("vllm",), "ours": ("ours", "ours-openai")}
console = Console(width=None if sys.stdout.isatty() else 150)  # a log file gets the whole table


@dataclass
class Sample:
    """One streamed request: when content arrived, how many tokens the server reported, and any failure."""

    ttft: float | None = None
    gaps: list[float] = field(default_factory=list)
    chunks: int = 0
    duration: float = 0.0
    tokens: int = 0
    error: str | None = None


@dataclass
class Level:
    """The measurements of one server at one concurrency."""

    server: str
    concurrency: int
    wall: float
    samples: list[Sample]
    load: float = 0.0  # the 1-minute load average just before the level; other work on the machine skews timings
    front_cpu: float = float("nan")  # CPU seconds of the HTTP front process (not the engine core) during the level

    @property
    def ok(self) -> list[Sample]:
        return [s for s in self.samples if s.error is None]

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.ok)

    @property
    def tok_s(self) -> float:
        return self.tokens / self.wall if self.wall else 0.0

    @property
    def ttft_ms(self) -> float:
        values = [s.ttft for s in self.ok if s.ttft is not None]
        return statistics.median(values) * 1000 if values else float("nan")

    @property
    def itl_ms(self) -> float:
        # Pooled over all requests, so long streams weigh by their number of gaps, as vLLM's own bench does.
        values = [g for s in self.ok for g in s.gaps]
        return statistics.median(values) * 1000 if values else float("nan")

    @property
    def tpot_ms(self) -> float:
        # Per token, not per chunk: a server that splits or merges chunks cannot look faster or slower by it.
        values = [sum(s.gaps) / (s.tokens - 1) for s in self.ok if s.tokens > 1 and s.gaps]
        return statistics.median(values) * 1000 if values else float("nan")

    @property
    def slowest_s(self) -> float:
        # Medians hide a stall; the slowest request shows one (and explains a tok/s that the p50s do not).
        return max((s.duration for s in self.ok), default=float("nan"))

    @property
    def front_ms_per_token(self) -> float:
        return self.front_cpu * 1000 / self.tokens if self.tokens else float("nan")

    @property
    def chunks(self) -> float:
        ok = self.ok
        return sum(s.chunks for s in ok) / len(ok) if ok else 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kv_cache_bytes(model: str) -> int:
    """The KV-cache size vresponses picks on this machine (vLLM's server gets the same, as a flag)."""
    from vresponses.engines.memory import plan_for_model

    return plan_for_model(model, "float32", 4096, None).bytes


def command(server: str, model: str, port: int, eager: bool, workdir: Path) -> list[str]:
    """The server's command line; both get the same engine options."""
    common = ["--max-model-len", "4096"] + (["--enforce-eager"] if eager else [])
    if server == "vllm":
        argv = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model, "--port", str(port)]
        argv += ["--served-model-name", NAME, "--dtype", "float32", *common]
        return [*argv, "--kv-cache-memory-bytes", str(kv_cache_bytes(model))]
    args = " ".join(
        ["--model", model, "--served-model-name", NAME, *common, "--store", f"sqlite:///{workdir / 'bench.db'}"]
    )
    return ["make", "-s", "--no-print-directory", "run", f"PORT={port}", f"API_KEY={KEY}", f"ARGS={args}"]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of one process, from /proc (NaN where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return float("nan")
    # After the command name: state is field 3, so utime (14) and stime (15) sit at 11 and 12 here.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def front_pid(pid: int) -> int:
    """The HTTP server process: pid itself, or the `vresponses serve` below `make run` (whose CPU is what counts)."""
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            argv = Path(f"/proc/{current}/cmdline").read_bytes().split(b"\0")
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        if not argv[0].endswith(b"make") and not argv[0].endswith(b"sh"):
            return current
        todo.extend(int(c) for c in children)
    return pid


def log_tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def running(
    server: str, model: str, eager: bool, workdir: Path, start_timeout: float
) -> Iterator[tuple[str, Path, int]]:
    """Starts a server in its own process group, waits for /health, and always kills the whole group after."""
    port = free_port()
    log = workdir / f"{server}.log"
    argv = command(server, model, port, eager, workdir)
    console.print(f"[bold]{server}[/bold]: starting ({'eager' if eager else 'compiled'}), log {log}")
    with log.open("wb") as out:
        # A new session lets one killpg reach the engine-core and compile workers the server forks.
        env = {k: v for k, v in os.environ.items() if not k.startswith("VLLM_")}
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**env, **VLLM_ENV} if server == "vllm" else env,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{server} exited with {proc.returncode} while starting:\n{log_tail(log)}")
            if time.monotonic() - started > start_timeout:
                raise RuntimeError(f"{server} not healthy after {start_timeout:.0f} s:\n{log_tail(log)}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        console.print(f"[bold]{server}[/bold]: healthy after {time.monotonic() - started:.0f} s")
        yield base, log, front_pid(proc.pid)
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, then SIGKILL what is left, so no engine outlives the run."""
    for sig, grace in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        # Wait for the whole group, not just the leader: the engine core may outlive the front process briefly.
        while time.monotonic() < deadline:
            proc.poll()  # reap the leader so it stops counting as a member
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def request(server: str, tokens: int, store: bool) -> tuple[str, dict[str, object]]:
    """The path and body asking each server (and dialect) for the same generation."""
    if server == "vllm":
        return "/v1/chat/completions", {
            "model": NAME,
            "messages": [{"role": "user", "content": PROMPT}],
            "stream": True,
            "max_tokens": tokens,
            # vLLM extras: generate exactly `tokens`, however early the model would stop.
            "min_tokens": tokens,
            "ignore_eos": True,
            "temperature": TEMPERATURE,
            "stream_options": {"include_usage": True},
        }
    # Ours rejects unknown parameters, so it may stop early at EOS; throughput counts the tokens it reports.
    body: dict[str, object] = {
        "model": NAME,
        "input": PROMPT,
        "stream": True,
        "max_output_tokens": tokens,
        "temperature": TEMPERATURE,
        "stream_options": {"include_usage": True},
    }
    if not store:
        body["store"] = False
    if server == "ours-openai":
        del body["stream_options"]  # OpenAI's dialect always reports usage in its last event
        return "/openai/v1/responses", body
    return "/v1/responses", body


async def one(client: httpx.AsyncClient, path: str, body: dict[str, object]) -> Sample:
    """Streams one request and times the content chunks."""
    sample = Sample()
    start = time.perf_counter()
    last: float | None = None
    done = False
    try:
        async with client.stream("POST", path, json=body) as resp:
            if resp.status_code != 200:
                sample.error = f"HTTP {resp.status_code}: {(await resp.aread()).decode(errors='replace')[:500]}"
                return sample
            async for line in resp.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    done = True
                    break
                chunk = json.loads(data)
                if "error" in chunk or chunk.get("type") in ("error", "response.failed"):
                    sample.error = f"stream error: {chunk.get('error') or chunk}"
                    return sample
                now = time.perf_counter()
                kind = chunk.get("type")
                content = kind == "response.output_text.delta" or any(
                    (choice.get("delta") or {}).get("content") for choice in chunk.get("choices") or ()
                )
                if content:
                    if last is None:
                        sample.ttft = now - start
                    else:
                        sample.gaps.append(now - last)
                    last = now
                    sample.chunks += 1
                if chunk.get("usage"):
                    sample.tokens = int(chunk["usage"]["completion_tokens"])
                if kind in ("response.completed", "response.incomplete"):
                    # OpenAI's dialect ends with its terminal event (there is no [DONE]).
                    sample.tokens = int(chunk["response"]["usage"]["output_tokens"])
                    done = True
                    break
            sample.duration = time.perf_counter() - start
    except (httpx.HTTPError, json.JSONDecodeError) as exc:
        sample.error = f"{type(exc).__name__}: {exc}"
        return sample
    if not done:
        sample.error = "stream ended without [DONE]"
    elif not sample.tokens:
        sample.error = "no usage chunk"
    return sample


async def drive(base: str, server: str, concurrency: int, requests: int, tokens: int, store: bool) -> Level:
    """`concurrency` workers share `requests` requests; wall time spans the whole level."""
    path, body = request(server, tokens, store)
    remaining = iter(range(requests))
    samples: list[Sample] = []

    async def worker(client: httpx.AsyncClient) -> None:
        # One shared iterator: a worker that finishes early takes the next request, keeping concurrency steady.
        for _ in remaining:
            samples.append(await one(client, path, body))

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    # vLLM's server ignores the header (it runs without --api-key); ours requires it, as make run does.
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(600.0), limits=limits, headers=headers) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - start
    return Level(server, concurrency, wall, samples)


async def warm_up(base: str, server: str, top: int, store: bool) -> None:
    """One full request, then a short burst at the highest concurrency, so first-batch costs stay out of timings."""
    for level in (await drive(base, server, 1, 1, 32, store), await drive(base, server, top, top, 8, store)):
        bad = [s.error for s in level.samples if s.error]
        if bad:
            raise RuntimeError(f"{server} warm-up failed: {bad[0]}")


def bench_server(server: str, args: argparse.Namespace, workdir: Path) -> dict[str, list[Level]]:
    with running(server, args.model, args.enforce_eager, workdir, args.start_timeout) as (base, log, pid):
        return {series: measure(series, base, log, pid, args) for series in SERIES[server]}


def measure(server: str, base: str, log: Path, pid: int, args: argparse.Namespace) -> list[Level]:
    """Every concurrency level against one running server, in one dialect."""
    levels: list[Level] = []
    asyncio.run(warm_up(base, server, max(args.concurrency), args.store))
    for c in args.concurrency:
        n = args.requests_per_level or max(8, 2 * c)
        load, cpu = os.getloadavg()[0], cpu_seconds(pid)
        level = asyncio.run(drive(base, server, c, n, args.tokens, args.store))
        # The front process shares the 2 cores with the engine, so its CPU per token costs throughput.
        level.load, level.front_cpu = load, cpu_seconds(pid) - cpu
        levels.append(level)
        errors = [s.error for s in level.samples if s.error]
        console.print(
            f"  {server} c={c}: {n} requests in {level.wall:.1f} s, {level.tok_s:.1f} tok/s, "
            f"TTFT p50 {level.ttft_ms:.0f} ms, ITL p50 {level.itl_ms:.1f} ms, TPOT p50 {level.tpot_ms:.1f} ms, "
            f"slowest {level.slowest_s:.1f} s, front CPU {level.front_ms_per_token:.2f} ms/tok, load {load:.1f}"
            + (f", [red]{len(errors)} errors[/red]" if errors else ""),
            soft_wrap=True,
        )
        if errors:
            # Report the server's side of failures rather than hiding them behind client retries.
            console.print(f"[red]first error:[/red] {errors[0]}\n[red]server log tail:[/red]\n{log_tail(log)}")
    return levels


def merge(levels: tuple[Level, ...]) -> Level:
    """One level over several rounds: all samples pooled, tokens over the summed wall time."""
    first = levels[0]
    samples = [s for lv in levels for s in lv.samples]
    wall = sum(lv.wall for lv in levels)
    load = max(lv.load for lv in levels)
    return Level(first.server, first.concurrency, wall, samples, load, sum(lv.front_cpu for lv in levels))


def report(results: dict[str, list[Level]], args: argparse.Namespace) -> None:
    mode = "enforce-eager" if args.enforce_eager else "compiled"
    table = Table(
        title=f"{NAME}, {args.tokens} output tokens/request, {mode}, {os.cpu_count()} CPUs",
        caption="ours: vresponses POST /v1/responses (Gradient) and /openai/v1/responses (OpenAI); "
        "vLLM: its OpenAI server, POST /v1/chat/completions.\n"
        "TPOT: (last - first content chunk) / (tokens - 1) per request. front CPU: CPU time of the server's HTTP "
        "process (not its engine core) per output token. load: highest 1-minute load average "
        "just before the level (the server under test adds to it); far above the CPU count, timings are noisy.",
    )
    cols = (
        "level",
        "server",
        "req",
        "err",
        "tok/req",
        "chunks/req",
        "tok/s",
        "TTFT p50 ms",
        "ITL p50 ms",
        "TPOT p50 ms",
        "slowest req s",
    )
    for col in (*cols, "front CPU ms/tok", "load"):
        table.add_column(col, justify="right" if col not in ("server",) else "left")
    labels = {"vllm": "vLLM", "ours": "ours (Gradient)", "ours-openai": "ours (OpenAI)"}
    for c in args.concurrency:
        for server in labels:
            for lv in results.get(server, []):
                if lv.concurrency != c:
                    continue
                ok = lv.ok
                per = lv.tokens / len(ok) if ok else 0.0
                table.add_row(
                    str(c),
                    labels[server],
                    str(len(lv.samples)),
                    str(len(lv.samples) - len(ok)),
                    f"{per:.0f}",
                    f"{lv.chunks:.0f}",
                    f"{lv.tok_s:.1f}",
                    f"{lv.ttft_ms:.0f}",
                    f"{lv.itl_ms:.1f}",
                    f"{lv.tpot_ms:.1f}",
                    f"{lv.slowest_s:.1f}",
                    f"{lv.front_ms_per_token:.2f}",
                    f"{lv.load:.1f}",
                )
    console.print(table)
    busy = max((lv.load for levels in results.values() for lv in levels), default=0.0)
    if busy > 2 * (os.cpu_count() or 1):
        console.print(f"[yellow]the machine was busy (load up to {busy:.1f}): treat the numbers as noisy[/yellow]")
    if not (results.get("ours") and results.get("vllm")):
        return
    ratios = Table(title="Ratios: ≥ 1.00 means vresponses is as good as vLLM or better")
    for col in ("level", "tok/s ours/vLLM", "TTFT p50 vLLM/ours", "ITL p50 vLLM/ours", "TPOT p50 vLLM/ours"):
        ratios.add_column(col, justify="right")
    for ours, vllm in zip(results["ours"], results["vllm"], strict=True):
        ratios.add_row(
            str(ours.concurrency),
            f"{ours.tok_s / vllm.tok_s:.2f}" if vllm.tok_s else "-",
            f"{vllm.ttft_ms / ours.ttft_ms:.2f}" if ours.ttft_ms else "-",
            f"{vllm.itl_ms / ours.itl_ms:.2f}" if ours.itl_ms else "-",
            f"{vllm.tpot_ms / ours.tpot_ms:.2f}" if ours.tpot_ms else "-",
        )
    console.print(ratios)
    if results.get("ours-openai"):
        dialects = Table(title="Dialects: OpenAI's semantic events against Gradient chunks (1.00 = the same)")
        for col in ("level", "tok/s OpenAI/Gradient", "TTFT p50 Gradient/OpenAI", "ITL p50 Gradient/OpenAI"):
            dialects.add_column(col, justify="right")
        for gradient, oai in zip(results["ours"], results["ours-openai"], strict=True):
            dialects.add_row(
                str(gradient.concurrency),
                f"{oai.tok_s / gradient.tok_s:.2f}" if gradient.tok_s else "-",
                f"{gradient.ttft_ms / oai.ttft_ms:.2f}" if oai.ttft_ms else "-",
                f"{gradient.itl_ms / oai.itl_ms:.2f}" if oai.itl_ms else "-",
            )
        console.print(dialects)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="model folder both servers load")
    parser.add_argument("--enforce-eager", action="store_true", help="skip graph compilation in both servers")
    parser.add_argument("--concurrency", default="1,8,32", type=lambda s: [int(x) for x in s.split(",") if x])
    parser.add_argument("--tokens", type=int, default=128, help="output tokens per request")
    parser.add_argument("--requests-per-level", type=int, default=0, help="default: max(8, 2 * concurrency)")
    parser.add_argument("--only", choices=SERVERS, help="run one server only")
    parser.add_argument("--rounds", type=int, default=1, help="restart and measure each server this many times")
    parser.add_argument("--no-store", dest="store", action="store_false", help='send "store": false to ours')
    parser.add_argument("--start-timeout", type=float, default=600.0, help="seconds to wait for /health")
    parser.add_argument("--json", type=Path, help="also write the raw per-level numbers here")
    args = parser.parse_args()
    if not Path(args.model).is_dir():
        console.print(f"[red]no model folder at {args.model}[/red]; run `vresponses models prepare` first")
        return 2
    runs: dict[str, list[list[Level]]] = {}
    with tempfile.TemporaryDirectory(prefix="vr-bench-") as tmp:
        workdir = Path(tmp)
        for r in range(args.rounds):
            # One after the other, never together: on a small machine two engines would share the same cores.
            # Alternating the order each round spreads slow drift in the machine's other load over both.
            for server in SERVERS if r % 2 == 0 else SERVERS[::-1]:
                if args.only in (None, server):
                    try:
                        for series, levels in bench_server(server, args, workdir).items():
                            runs.setdefault(series, []).append(levels)
                    except RuntimeError as exc:
                        console.print(f"[red]{exc}[/red]")
                        return 1
    results = {server: [merge(same) for same in zip(*rounds, strict=True)] for server, rounds in runs.items()}
    report(results, args)
    if args.json:
        keys = (
            "server",
            "concurrency",
            "wall",
            "tokens",
            "tok_s",
            "ttft_ms",
            "itl_ms",
            "tpot_ms",
            "slowest_s",
            "chunks",
            "front_cpu",
            "load",
        )
        rows = [
            {k: getattr(lv, k) for k in keys} | {"errors": len(lv.samples) - len(lv.ok)}
            for lvs in results.values()
            for lv in lvs
        ]
        args.json.write_text(json.dumps(rows, indent=2))
    failed = any(s.error for levels in results.values() for lv in levels for s in lv.samples)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
