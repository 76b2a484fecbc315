"""Starting and stopping the real server (real vLLM engine, real model) as a child process for e2e tests.

Servers start the way users start them: `make run` with documented `ARGS`, and no engine environment variables.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
# Flags the README documents that make the shared test servers start faster and use less memory: several run at
# once, and each would otherwise take a quarter of the memory still available when it starts (test_make_run keeps
# the default sizing covered).
FAST = ("--enforce-eager", "--max-model-len", "4096", "--kv-cache-memory", "1GiB")


def _children(pid: int) -> list[int]:
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        return [int(c) for t in tasks for c in (t / "children").read_text().split()]
    except OSError:
        return []


def _argv(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def gauge(metrics: str, name: str) -> float:
    """One unlabelled gauge's value from a /metrics text."""
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


def wait_healthy(proc: subprocess.Popen[bytes], url: str, timeout: float, what: str) -> bool:
    """Poll url/health until it answers 200 (True) or timeout passes (False); raise if proc exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


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
        if not wait_healthy(self.proc, self.url, timeout, f"server; see {self.log_path}"):
            self.stop()
            raise RuntimeError(f"server did not become healthy in {timeout}s; see {self.log_path}")
        return self

    @property
    def pid(self) -> int:
        """The `vresponses serve` process that make started: signals meant for the server go here, never to make."""
        assert self.proc is not None
        todo, seen = [self.proc.pid], set()
        while todo:
            parent = todo.pop()
            seen.add(parent)
            for child in _children(parent):
                argv = _argv(child)
                if len(argv) > 2 and argv[1].endswith("/vresponses") and argv[2] == "serve":
                    return child
                if child not in seen:
                    todo.append(child)
        raise RuntimeError(f"no vresponses server below make (pid {self.proc.pid})")

    def send_signal(self, sig: signal.Signals) -> None:
        """Signal the server process alone, as a supervisor such as systemd's KillMode=process would."""
        os.kill(self.pid, sig)

    def wait(self, timeout: float) -> int:
        """Wait for make to end and return its exit status: 0 exactly when the server exited 0."""
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL the server and its engine process group, as a crash would."""
        if self.proc is not None:
            self._signal(signal.SIGKILL)
            self._wait_for_group(30)

    def stop(self) -> None:
        """SIGTERM the whole process group and wait for it to go; SIGKILL what is left after 30 s.

        The group, not `make`: `make` may already have exited while the server it started still runs (and holds
        gigabytes of KV cache that the next test's server needs).
        """
        if self.proc is not None:
            self._signal(signal.SIGTERM)
            if not self._wait_for_group(30):
                self.kill()

    def _signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def _wait_for_group(self, timeout: float) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.proc.poll()  # reap make, or the group never empties
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.1)
        return False

    def unfinished(self) -> float:
        """The engine's unfinished request count, from /metrics."""
        metrics = httpx.get(self.url + "/metrics", headers={"Authorization": f"Bearer {self.key}"}).text
        return gauge(metrics, "vresponses_engine_unfinished_requests")
