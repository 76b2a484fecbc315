"""Starting and stopping the real server (real vLLM engine, real model) as a child process for e2e tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ENGINE_ENV = {
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One `vresponses serve` process on a free port with its own log file."""

    def __init__(self, store: str, key: str, log: Path, *extra: str) -> None:
        self.port = free_port()
        self.store = store
        self.key = key
        self.log_path = log
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 300.0) -> Server:
        cmd = [
            sys.executable, "-m", "vresponses", "serve",
            "--port", str(self.port), "--api-key", self.key, "--store", self.store,
            "--enforce-eager", "--max-model-len", "4096", "--log-level", "warning", *self.extra,
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **ENGINE_ENV}, start_new_session=True
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
