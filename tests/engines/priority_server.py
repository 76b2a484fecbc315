"""A stand-in server for the priority test: installs the engine nice value given as its argument, starts one child
by fork and one by spawn (which loads the plugin as vLLM's processes do), and prints each one's and its own nice."""

from __future__ import annotations

import multiprocessing
import os
import sys
from multiprocessing.queues import Queue

from vresponses.engines import priority


def report(niceness: Queue[int]) -> None:
    niceness.put(os.getpriority(os.PRIO_PROCESS, 0))


def spawned(niceness: Queue[int]) -> None:
    priority.lower()  # what vLLM does in every process it spawns: load its general plugins, ours among them
    report(niceness)


if __name__ == "__main__":
    priority.install(int(sys.argv[1]))
    priority.lower()  # the plugin loads in the server's own process too (vLLM loads plugins in its front end)
    seen: list[int] = []
    for method, target in (("fork", report), ("spawn", spawned)):
        context = multiprocessing.get_context(method)
        niceness: Queue[int] = context.Queue()
        child = context.Process(target=target, args=(niceness,))
        child.start()
        seen.append(niceness.get(timeout=60))
        child.join(60)
    print(os.getpriority(os.PRIO_PROCESS, 0), *seen, flush=True)
