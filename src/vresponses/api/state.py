"""What every handler shares: the app's state, the JSON answer, and parsing a create-response body."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.requests import HTTPConnection
from starlette.responses import Response

from vresponses.api.auth import Keys
from vresponses.api.errors import from_validation
from vresponses.api.schema import CreateResponse, to_request
from vresponses.api.wire import encode
from vresponses.errors import NotFound
from vresponses.pipeline.jobs import Jobs
from vresponses.pipeline.limits import check_wire
from vresponses.pipeline.request import ResponseRequest
from vresponses.pipeline.service import Responder

_JSON = "application/json"


class State:
    """What the handlers share: set up by the app's lifespan."""

    def __init__(self, responder: Responder, jobs: Jobs, keys: Keys, max_body: int) -> None:
        self.responder = responder
        self.jobs = jobs
        self.keys = keys
        self.max_body = max_body


def state(conn: HTTPConnection) -> State:
    """The app's shared state."""
    st: State = conn.app.state.vr
    return st


def json_response(obj: Any, status: int = 200) -> Response:
    """A JSON body."""
    return Response(encode(obj), status_code=status, media_type=_JSON)


async def parse_request(st: State, conn: HTTPConnection, data: Any) -> ResponseRequest:
    """A create-response body, validated, for this caller's tenant, naming the served model."""
    key = st.keys.check(conn)
    check_wire(data, st.responder.limits)  # item and tool counts, before validating item by item
    try:
        body = CreateResponse.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc) from None
    req = to_request(body, await st.responder.tenants.resolve(key))
    served = st.responder.engine.info.name
    if req.model != served:
        raise NotFound(
            f"The model {req.model!r} does not exist; this server serves {served!r}.",
            param="model",
            code="model_not_found",
        )
    return req
