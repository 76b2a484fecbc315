"""A stand-in server for the lifeline test: arms its children (unless told not to), starts one by fork and one by
spawn; the spawned one (an "engine core") spawns a grandchild (a "worker"); prints the three pids, then waits."""

from __future__ import annotations

import multiprocessing
import sys
import time
from multiprocessing.queues import Queue

from vresponses.engines import lifeline


def worker() -> None:
    lifeline.arm()  # what vLLM does in every process it spawns: load its general plugins, ours among them
    time.sleep(120)


def engine_core(pids: Queue[int]) -> None:
    lifeline.arm()
    child = multiprocessing.get_context("spawn").Process(target=worker)
    child.start()
    pids.put(child.pid or 0)
    time.sleep(120)


if __name__ == "__main__":
    if sys.argv[1:] == ["--armed"]:
        lifeline.install()
    spawn = multiprocessing.get_context("spawn")
    pids: Queue[int] = spawn.Queue()
    forked = multiprocessing.get_context("fork").Process(target=time.sleep, args=(120,))
    spawned = spawn.Process(target=engine_core, args=(pids,))
    forked.start()
    spawned.start()
    grandchild = pids.get(timeout=60)
    time.sleep(3)  # the grandchild imports this module and arms itself
    print(forked.pid, spawned.pid, grandchild, flush=True)
    time.sleep(120)
