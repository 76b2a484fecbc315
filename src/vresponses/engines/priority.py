"""Engine processes run at a lower CPU priority (a higher nice value) than the server that started them.

On a CPU machine vLLM's worker threads take every core for each forward pass, and the server's event loop (every
stream's next chunk, /health, a 429) queued behind them: here its main thread waited on the run queue longer than it
ran, up to ~0.5 s at a time under load. With the engine niced the kernel runs the server first whenever it has work;
the engine still gets every cycle the server does not use, so throughput is unchanged. Like the lifeline, the server
names the value in the environment and each engine process lowers itself as it starts (vLLM's general-plugin hook
for spawned processes, an at-fork hook for forked ones), so an engine restarted later is lowered too.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

ENV = "VRESPONSES_ENGINE_NICE"
_installed = False


def install(nice: int) -> None:
    """Run every engine process this server starts from now on at nice value `nice` (or the higher one it has);
    0 leaves them as they are."""
    global _installed
    if nice <= 0 or _installed or not hasattr(os, "register_at_fork"):
        return
    _installed = True
    os.environ[ENV] = f"{nice}@{os.getpid()}"
    os.register_at_fork(after_in_child=lower)
    log.info("engine processes run at nice %d, below this server's", nice)


def lower() -> None:
    """vLLM general plugin (and at-fork hook): in a process below the server that called `install`, raise the nice
    value of each of its threads (threads started later inherit it from the one that starts them)."""
    nice, _, root = os.environ.get(ENV, "").partition("@")
    if not nice.isdigit() or not root or root == str(os.getpid()):
        return
    try:
        threads = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        threads = [0]  # not Linux: the calling thread only
    for thread in threads:
        try:
            # On Linux a nice value belongs to a thread; PRIO_PROCESS with a thread id sets that one thread's.
            current = os.getpriority(os.PRIO_PROCESS, thread)
            os.setpriority(os.PRIO_PROCESS, thread, min(19, max(current, int(nice))))
        except OSError:
            continue
