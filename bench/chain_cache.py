"""Report input and cached tokens per turn over a ten-turn previous_response_id chain on the real server."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

MODEL = "SmolLM2-135M-Instruct"
TURNS = [
    "Hello! I am planning a trip to the mountains next month.",
    "What should I pack for cold nights?",
    "How many days of food should I carry for a four day hike?",
    "Which stove works best at high altitude?",
    "What about water purification?",
    "Should I bring a map or rely on my phone?",
    "How do I plan for bad weather?",
    "What is a good daily distance for a beginner?",
    "Any advice on blisters?",
    "Thanks! Summarize the plan in three sentences.",
]


def start(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start `vresponses serve` on a free port and wait until healthy."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}
    cmd = [sys.executable, "-m", "vresponses", "serve", "--port", str(port), "--enforce-eager",
           "--max-model-len", "4096", "--store", f"sqlite:///{tmp / 'chain.db'}", "--log-level", "warning"]  # fmt: skip
    with (tmp / "server.log").open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.5)
    raise SystemExit(f"server did not start; see {tmp / 'server.log'}")


def main() -> None:
    """Run the chain and print one row per turn."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="an already running server (default: start one)")
    parser.add_argument("--key", default=None)
    args = parser.parse_args()
    proc = None
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url
        if url is None:
            proc, url = start(Path(tmp))
        headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
        try:
            previous = None
            print(f"{'turn':>4} {'input':>7} {'cached':>7} {'prev in+out':>12} {'cached/prev':>12}")
            prev_total = 0
            for i, text in enumerate(TURNS, 1):
                body = {"model": MODEL, "input": text, "max_output_tokens": 60, "temperature": 0}
                if previous:
                    body["previous_response_id"] = previous
                r = httpx.post(url + "/v1/responses", json=body, headers=headers, timeout=300).json()
                usage = r["usage"]
                cached = usage["input_tokens_details"]["cached_tokens"]
                ratio = f"{cached / prev_total:.2f}" if prev_total else "-"
                print(f"{i:>4} {usage['input_tokens']:>7} {cached:>7} {prev_total:>12} {ratio:>12}")
                prev_total = usage["input_tokens"] + usage["output_tokens"]
                previous = r["id"]
        finally:
            if proc is not None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(30)


if __name__ == "__main__":
    main()
