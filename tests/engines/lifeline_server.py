"""A stand-in server for the lifeline test: arms its children, starts one by fork and one by spawn, then waits."""

from __future__ import annotations

import multiprocessing
import sys
import time

from vresponses.engines import lifeline


def spawned_child() -> None:
    # What vLLM does in every engine process it spawns: load its general plugins, ours among them.
    lifeline.arm()
    time.sleep(120)


if __name__ == "__main__":
    if sys.argv[1:] == ["--armed"]:
        lifeline.install()
    forked = multiprocessing.get_context("fork").Process(target=time.sleep, args=(120,))
    spawned = multiprocessing.get_context("spawn").Process(target=spawned_child)
    forked.start()
    spawned.start()
    time.sleep(3)  # the spawned child imports this module and arms itself
    print(forked.pid, spawned.pid, flush=True)
    time.sleep(120)
