"""Fixtures shared by every test folder."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

_opened: list[str] = []
_armed = threading.Event()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    # Stops (and records) any attempt to open /dev/zero while armed: a regression fails, it does not eat memory.
    if _armed.is_set() and event == "open" and "/dev/zero" in str(args[0]):
        _opened.append(str(args[0]))
        raise PermissionError("test: /dev/zero must never be opened")


sys.addaudithook(_audit)


@pytest.fixture
def watch_dev_zero() -> Iterator[list[str]]:
    """The paths under /dev/zero that something tried to open during the test (each attempt also fails)."""
    _opened.clear()
    _armed.set()
    try:
        yield _opened
    finally:
        _armed.clear()
