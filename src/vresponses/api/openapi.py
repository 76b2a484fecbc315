"""The OpenAPI document of the API, generated from the request schema, for typed clients and fuzzers."""

from __future__ import annotations

from functools import cache
from typing import Any

from vresponses import __version__
from vresponses.api.schema import CreateResponse

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
_OBJECT = {"type": "object"}


def _answers(ok: dict[str, Any], *errors: int) -> dict[str, Any]:
    out: dict[str, Any] = {"200": ok}
    for status in errors:
        out[str(status)] = {"description": "An error", "content": {"application/json": {"schema": _ERROR}}}
    return out


def _json(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _OBJECT}}}


@cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document for /v1 (the same paths exist under /gradient/v1 and /openai/v1)."""
    request = CreateResponse.model_json_schema(ref_template="#/components/schemas/{model}", by_alias=True)
    components = request.pop("$defs", {})
    components["CreateResponse"] = request
    body = {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CreateResponse"}}},
    }
    rid = [{"name": "response_id", "in": "path", "required": True, "schema": {"type": "string"}}]
    created = {
        "description": "The response, or its server-sent events when 'stream' is true",
        "content": {"application/json": {"schema": _OBJECT}, "text/event-stream": {"schema": {"type": "string"}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "vresponses",
            "version": __version__,
            "description": "The Responses API on a vLLM engine.",
        },
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/responses": {
                "post": {
                    "operationId": "createResponse",
                    "requestBody": body,
                    "responses": _answers(created, 400, 401, 404, 413, 429, 503),
                }
            },
            "/v1/responses/input_tokens": {
                "post": {
                    "operationId": "countInputTokens",
                    "requestBody": body,
                    "responses": _answers(_json("The token count"), 400, 401, 404),
                }
            },
            "/v1/responses/{response_id}": {
                "get": {
                    "operationId": "getResponse",
                    "parameters": rid,
                    "responses": _answers(_json("The response"), 401, 404),
                },
                "delete": {
                    "operationId": "deleteResponse",
                    "parameters": rid,
                    "responses": _answers(_json("The deletion"), 401, 404),
                },
            },
            "/v1/responses/{response_id}/input_items": {
                "get": {
                    "operationId": "listInputItems",
                    "parameters": rid,
                    "responses": _answers(_json("A page of input items"), 400, 401, 404),
                }
            },
            "/v1/responses/{response_id}/cancel": {
                "post": {
                    "operationId": "cancelResponse",
                    "parameters": rid,
                    "responses": _answers(_json("The cancelled response"), 400, 401, 404),
                }
            },
            "/v1/models": {"get": {"operationId": "listModels", "responses": _answers(_json("The model"), 401)}},
        },
    }
