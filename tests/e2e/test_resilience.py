"""The real server when things break underneath: its engine core killed under load, 4x the admitted load, SIGTERM
with streams open, keys rotated through the key file, and the server itself SIGKILLed.

Two server starts (each ~40 s or more here) and one engine restart: the first server has its engine killed, recovers
in-process, and is then SIGKILLed; the second serves the key, load and drain scenarios and ends with SIGTERM.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e import faults
from tests.e2e.server import Server

KEY = "e2e-resilience-key"
FILE_KEY = "e2e-file-key-one"
ROTATED = "e2e-file-key-two"
HUPPED = "e2e-file-key-three"
ADMITTED = 8


def digest(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("faulty")
    srv = Server(f"sqlite:///{base / 'responses.db'}", KEY, base / "server.log")
    srv.start(timeout=900)  # a shared 2-core machine can take minutes
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "keys"
    path.write_text(f"# digests only: no plain key on disk\n{digest(FILE_KEY)}\n")
    return path


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory, key_file: Path) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("loaded")
    srv = Server(
        f"sqlite:///{base / 'responses.db'}",
        KEY,
        base / "server.log",
        "--api-key-file", str(key_file),
        "--max-concurrent-requests", str(ADMITTED),
        "--drain-timeout", "8",
    )  # fmt: skip
    srv.start(timeout=900)  # a shared 2-core machine can take minutes
    yield srv
    srv.stop()


async def test_engine_death_fails_everything_in_flight_then_the_engine_restarts(faulty: Server) -> None:
    figures = await faults.kill_engine(faulty.url, KEY, faulty.pid, streams=16, background=4)
    print("engine kill:", figures.summary())
    assert figures.streams_errored == figures.streams_total == 16
    assert max(figures.stream_end_s) < 5
    assert figures.health_503_after_s < 5
    assert figures.background_statuses == ["failed"] * 4
    assert all("engine process died" in e for e in figures.background_errors)
    assert figures.stored_intact
    assert figures.orphans == []  # the killed core's worker went with it
    assert figures.after_recovery_status.startswith("200 ")
    # The restarted engine runs below the server too (make run's default on CPU), so HTTP stays ahead of it.
    base = os.getpriority(os.PRIO_PROCESS, 0)
    core = faults.engine_core(faulty.pid)
    assert [faults.niceness(pid) for pid in (core, *faults.descendants(core))] == [{max(base, 10)}] * 2  # + worker
    assert faults.niceness(faulty.pid) == {base}


def test_sigkill_of_the_server_leaves_no_engine_process(faulty: Server) -> None:
    # The engine now running was started by the restart thread: its parent-death signal must hold too.
    tree, seconds, left = faults.sigkill_server(faulty)
    print(f"server SIGKILL: {len(tree)} engine processes gone in {seconds:.2f} s")
    assert len(tree) >= 2 and left == []


def test_keys_rotate_through_the_key_file(loaded: Server, key_file: Path) -> None:

    def status(key: str) -> int:
        return httpx.get(loaded.url + "/v1/models", headers=faults.headers(key)).status_code

    assert (status(KEY), status(FILE_KEY), status(ROTATED)) == (200, 200, 401)
    key_file.write_text(f"{digest(ROTATED)}\n")
    deadline = time.monotonic() + 10
    while status(ROTATED) != 200:  # the watcher checks the file every second
        assert time.monotonic() < deadline, "the rotated key was never accepted"
        time.sleep(0.1)
    assert status(FILE_KEY) == 401 and status(KEY) == 200
    key_file.write_text(f"{HUPPED}\n")
    loaded.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while status(HUPPED) != 200:
        assert time.monotonic() < deadline, "SIGHUP did not reload the key file"
        time.sleep(0.05)
    assert status(ROTATED) == 401
    log = loaded.log_path.read_text()
    assert all(k not in log for k in (KEY, FILE_KEY, ROTATED, HUPPED))


async def test_four_times_the_admitted_load_is_refused_fast(loaded: Server) -> None:
    figures = await faults.overload(loaded.url, KEY, loaded.pid, clients=4 * ADMITTED, seconds=15)
    print("overload:", figures.summary())
    assert set(figures.statuses) <= {200, 429} and figures.statuses[200] and figures.statuses[429]
    assert figures.refusals_without_retry_after == 0
    assert figures.health_not_ok == 0
    assert figures.rss_after_mb - figures.rss_before_mb < 200
    # Timed at the median only. The tail targets (429 p99 < 50 ms, /health p99 < 100 ms) are judged by
    # `make soak` (met here: 429 p99 13-25 ms, /health p99 8-12 ms): a shared 2-core CI machine stalls whole processes
    # now and then, and one 1.2 s stall there failed a p99 bound ten times the target. That a refusal never waits on
    # the engine is proven without a clock by the frozen-engine test below.
    assert faults.percentile(figures.refusal_ms, 50) < 50
    assert faults.percentile(figures.health_ms, 50) < 50


async def test_refusals_and_health_never_wait_on_the_engine(loaded: Server) -> None:
    # With the engine core stopped, anything that waited on it would never be answered: the timing-free proof.
    figures = await faults.frozen_engine(loaded.url, KEY, loaded.pid, admitted=ADMITTED, extra=4 * ADMITTED)
    print("frozen engine:", figures.summary())
    assert figures.refusal_statuses == {429: 4 * ADMITTED}
    assert max(figures.refusal_ms) < 2000  # all 32 at once, each on a new connection: ~70 ms here
    assert figures.health_status == 200
    assert figures.admitted_statuses == {200: ADMITTED}  # nothing admitted was lost while the engine stood still


async def test_sigterm_drains_then_exits_zero(loaded: Server) -> None:
    db = Path(loaded.store.removeprefix("sqlite:///"))
    figures = await faults.sigterm(loaded.url, KEY, loaded, db, short=4, long=4)
    print("SIGTERM:", figures.summary())
    assert figures.exit_code == 0
    assert figures.new_request_status == 503 and figures.health_status == 503
    assert figures.streams_done + figures.streams_errored == figures.streams_total == 8
    assert figures.streams_done >= 4 and figures.streams_errored >= 1  # the long ones outlast the 8 s drain
    assert set(figures.rows.values()) <= {"completed", "incomplete", "failed"}
