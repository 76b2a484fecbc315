"""The openai SDK as a second real client: create, retrieve, list input items, delete, errors."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.e2e.conftest import KEY, MODEL
from tests.e2e.server import Server


@pytest.fixture(scope="module")
def oai(server: Server) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key=KEY, base_url=server.url + "/v1", max_retries=0) as client:
        yield client


def test_openai_sdk_round_trip(oai: openai.OpenAI) -> None:
    created = oai.responses.create(model=MODEL, input="Say hello.", max_output_tokens=10, temperature=0)
    assert created.id.startswith("resp_") and created.status in ("completed", "incomplete")
    got = oai.responses.retrieve(created.id)
    assert got.id == created.id and got.usage.output_tokens == created.usage.output_tokens
    items = oai.responses.input_items.list(created.id)
    assert [i.type for i in items.data] == ["message"]
    oai.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        oai.responses.retrieve(created.id)


def test_openai_sdk_sees_error_shape(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        oai.responses.create(model=MODEL, input="x", temperature=5)
    assert info.value.code is None and info.value.param == "temperature"
    assert info.value.type == "invalid_request_error"


def test_openai_models_list(oai: openai.OpenAI) -> None:
    assert [m.id for m in oai.models.list()] == [MODEL]
