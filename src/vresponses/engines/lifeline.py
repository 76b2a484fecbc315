"""Engine processes die with the server that started them, however it dies (SIGKILL and the OOM killer included).

The kernel does the work: a child armed with `PR_SET_PDEATHSIG` gets SIGKILL when its parent thread ends. vLLM
starts its engine core either by fork (the default) or by spawn (forced on CPU and when CUDA is initialized), so a
child is armed on both paths: an at-fork hook for forked children, and vLLM's own general-plugin hook (the
`vllm.general_plugins` entry point, which vLLM loads in every engine and worker process) for spawned ones. Each
process dies with its own parent, so the chain server -> engine core -> worker unwinds from whichever link dies
(vLLM's own worker death pipe left a CPU worker spinning, orphaned, after its engine core was killed). Only
processes below a server that called `install()` are armed (it names itself in the environment); vLLM run on its
own is untouched. The thread that starts a child must outlive it: the server's main thread or the supervisor's
start thread, and the engine core's main thread (where vLLM starts its workers).
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys

log = logging.getLogger(__name__)

ROOT_ENV = "VRESPONSES_LIFELINE_ROOT"
_PR_SET_PDEATHSIG = 1

_libc: ctypes.CDLL | None = None
_installed = False
_forking_parent = 0


def _load_libc() -> ctypes.CDLL | None:
    global _libc
    if _libc is None and sys.platform.startswith("linux"):
        try:
            _libc = ctypes.CDLL(None, use_errno=True)
        except OSError:
            return None
    return _libc


def _die_with(parent: int) -> None:
    """Ask the kernel for SIGKILL when the parent ends; exit now if it already has."""
    libc = _load_libc()
    if libc is None or libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return
    if parent and os.getppid() != parent:
        # The parent died between our start and the prctl call: the signal will never come.
        os._exit(1)


def _before_fork() -> None:
    global _forking_parent
    _forking_parent = os.getpid()


def _after_fork_in_child() -> None:
    if os.environ.get(ROOT_ENV):
        _die_with(_forking_parent)


def install() -> None:
    """Arm every engine process this server starts from now on; call once, in the server process."""
    global _installed
    if _installed or _load_libc() is None:
        return
    _installed = True
    os.environ[ROOT_ENV] = str(os.getpid())
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


def arm() -> None:
    """vLLM general plugin: in a process spawned below the armed server (engine core, its workers), die with the
    parent that started it."""
    root = os.environ.get(ROOT_ENV)
    if not root or root == str(os.getpid()):
        return
    parent = multiprocessing.parent_process()
    if parent is not None and parent.pid is not None:
        _die_with(parent.pid)
