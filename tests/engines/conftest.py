"""Fixtures: two simulated replicas and a RemoteEngine that has admitted them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from bench.replica_sim import SimReplica

from tests.engines.replicas import Replicas, make_engine, simulated
from vresponses.engines.remote import RemoteEngine


@pytest.fixture
def replicas() -> Replicas:
    return simulated()


@pytest.fixture
def sims(replicas: Replicas) -> dict[str, SimReplica]:
    return replicas.sims


@pytest.fixture
async def remote(replicas: Replicas) -> AsyncIterator[RemoteEngine]:
    engine = make_engine(replicas)
    await engine.probe()
    replicas.generates.clear()  # forget the admission probes
    yield engine
    await engine.close()
