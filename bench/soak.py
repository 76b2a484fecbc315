"""`make soak`: the real server under load and faults for a set time, printing each scenario's figures.

Cycles of (4x the admitted load, then kill -9 of the engine core, or of its worker, under open streams and
background responses, then its in-process recovery) until the time is up, at least one; then SIGTERM with streams
open (drain, exit code 0); then a fresh server SIGKILLed to check that no engine process outlives it. The last
lines compare the figures with the targets of the resilience issue. Run it from the repository root:
`python -m bench.soak --seconds 600`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.e2e import faults
from tests.e2e.server import Server

KEY = "soak-key"


def report(name: str, figures: dict[str, Any]) -> None:
    print(f"{name:<22} {json.dumps(figures)}", flush=True)


def main() -> None:
    """Run the scenarios and print their figures; exit 1 if a target was missed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=300, help="how long to cycle load and engine kills")
    parser.add_argument("--admitted", type=int, default=8, help="--max-concurrent-requests of the server")
    parser.add_argument("--load-seconds", type=float, default=60, help="length of each overload phase")
    args = parser.parse_args()
    misses: list[str] = []

    def target(ok: bool, what: str) -> None:
        if not ok:
            misses.append(what)

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        server = Server(
            f"sqlite:///{base / 'soak.db'}",
            KEY,
            base / "server.log",
            "--max-concurrent-requests", str(args.admitted),
            "--drain-timeout", "10",
        )  # fmt: skip
        began = time.monotonic()
        server.start(timeout=900)
        print(f"server started in {time.monotonic() - began:.0f} s; log: {server.log_path}", flush=True)
        ends = time.monotonic() + args.seconds
        cycle = 0
        try:
            while cycle == 0 or time.monotonic() < ends:
                cycle += 1
                seconds = max(5.0, min(args.load_seconds, ends - time.monotonic()))
                load = asyncio.run(faults.overload(server.url, KEY, server.pid, 4 * args.admitted, seconds))
                report(f"cycle {cycle} overload", load.summary())
                target(set(load.statuses) <= {200, 429}, f"cycle {cycle}: a status other than 200/429")
                target(faults.percentile(load.steady_refusal_ms, 99) < 50, f"cycle {cycle}: 429 p99 >= 50 ms")
                target(faults.percentile(load.health_ms, 99) < 100, f"cycle {cycle}: /health p99 >= 100 ms")
                # Odd cycles kill the engine core, even ones its worker process.
                worker = cycle % 2 == 0
                # Background responses count against the admitted requests too: open streams for the rest.
                streams = max(1, args.admitted - 4)
                kill = asyncio.run(
                    faults.kill_engine(server.url, KEY, server.pid, streams=streams, background=4, worker=worker)
                )
                report(f"cycle {cycle} kill {'worker' if worker else 'core'}", kill.summary())
                target(kill.streams_errored == kill.streams_total, f"cycle {cycle}: a stream ended without error")
                target(max(kill.stream_end_s) < 5, f"cycle {cycle}: a stream took >= 5 s to end")
                target(set(kill.background_statuses) == {"failed"}, f"cycle {cycle}: a background row not failed")
                target(kill.stored_intact and not kill.orphans, f"cycle {cycle}: store changed or orphans left")
            drain = asyncio.run(faults.sigterm(server.url, KEY, server, base / "soak.db"))
            report("SIGTERM drain", drain.summary())
            target(drain.exit_code == 0, "SIGTERM: exit code not 0")
            target(set(drain.rows.values()) <= {"completed", "incomplete", "failed"}, "SIGTERM: a row half-written")
        finally:
            server.stop()
        fresh = Server(f"sqlite:///{base / 'kill.db'}", KEY, base / "kill.log")
        fresh.start(timeout=900)
        tree, seconds, left = faults.sigkill_server(fresh)
        report("server SIGKILL", {"engine_processes": len(tree), "gone_after_s": round(seconds, 2), "left": left})
        target(not left, "SIGKILL: engine processes outlived the server")
    print("targets:", "all met" if not misses else "; ".join(misses), flush=True)
    raise SystemExit(1 if misses else 0)


if __name__ == "__main__":
    main()
