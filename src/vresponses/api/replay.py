"""Replaying a stored or running response's stream (`GET /responses/{id}?stream=true&starting_after=N`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import anyio

from vresponses.api.dialect import Dialect
from vresponses.pipeline.events import Event, Status
from vresponses.pipeline.replay import events_of
from vresponses.pipeline.response import decode_response
from vresponses.store.base import StoredResponse

if TYPE_CHECKING:
    from vresponses.api.routes import State

# How long a replay waits for a response running in another process to finish.
WAIT_SECONDS = 600.0


async def _events(st: State, tenant: str, row: StoredResponse) -> AsyncIterator[Event]:
    log = st.jobs.logs.get(row.id)
    if log is not None:
        async for event in log.follow():  # running here: the live events, from the first
            yield event
        return
    with anyio.move_on_after(WAIT_SECONDS):
        while not Status(row.status).final:  # running elsewhere: replay it once it is done
            await anyio.sleep(0.5)
            fresh = await st.responder.store.get(row.id, tenant)
            if fresh is None:
                return
            row = fresh
    response = decode_response(row.body).with_status(Status(row.status))
    for event in events_of(response):
        yield event


async def replay(dialect: Dialect, st: State, tenant: str, row: StoredResponse, after: int) -> AsyncIterator[bytes]:
    """The dialect's stream of the response's events, skipping the first after+1 wire events."""
    response = decode_response(row.body)
    async for chunk in dialect.stream(response, _events(st, tenant, row), False, skip=after + 1):
        yield chunk
