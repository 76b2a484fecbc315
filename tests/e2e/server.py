"""Starting and stopping the real server (real vLLM engine, real model) as a child process for e2e tests.

Servers start the way users start them: `make run` with documented `ARGS`, and no engine environment variables.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
# Flags the README documents that make the shared test servers start faster and use less memory.
FAST = ("--enforce-eager", "--max-model-len", "4096")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One `vresponses serve` process on a free port with its own log file."""

    def __init__(self, store: str, key: str, log: Path, *extra: str, fast: bool = True) -> None:
        self.port = free_port()
        self.store = store
        self.key = key
        self.log_path = log
        self.extra = (*FAST, *extra) if fast else extra
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 300.0) -> Server:
        args = ["--store", self.store, *self.extra]
        cmd = ["make", "-s", "--no-print-directory", "run", f"PORT={self.port}", f"API_KEY={self.key}",
               f"ARGS={shlex.join(args)}"]  # fmt: skip
        # The user's environment, minus anything that would tune the engine behind make run's back.
        env = {k: v for k, v in os.environ.items() if not k.startswith("VLLM_")}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log_path}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"server did not become healthy in {timeout}s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL the server and its engine process group, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def unfinished(self) -> float:
        """The engine's unfinished request count, from /metrics."""
        text = httpx.get(self.url + "/metrics", headers={"Authorization": f"Bearer {self.key}"}).text
        for line in text.splitlines():
            if line.startswith("vresponses_engine_unfinished_requests "):
                return float(line.split()[1])
        raise AssertionError("metric missing")
