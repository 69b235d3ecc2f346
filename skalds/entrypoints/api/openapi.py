"""What ``/schema`` says beyond the handlers' signatures: the request bodies' real schemas and the one error
shape, with the error statuses each operation can answer.

Bodies are read as plain JSON and validated by the pydantic request models in the handlers (strict
integers, refusals in the API's error shape), so Litestar would describe them as "any object"; ``body``
puts the model's JSON schema there instead.
"""

# no ``from __future__ import annotations``: TypedDict reads NotRequired only from real annotations
from typing import Any, NotRequired, TypedDict

from litestar.enums import RequestEncodingType
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body
from pydantic import BaseModel


class Problem(TypedDict):
    field: str
    message: str


class ErrorReply(TypedDict):
    """Every error answer. ``error`` is a stable code (NOT_FOUND, INVALID_TRANSITION, CONFLICT,
    ALREADY_EXISTS, VALIDATION_ERROR, BAD_REQUEST, UNKNOWN_HOST, UNAUTHORIZED, FORBIDDEN, CROSS_SITE,
    METHOD_NOT_ALLOWED, TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, BACKEND_UNAVAILABLE, HTTP_ERROR, INTERNAL_ERROR);
    ``message`` starts with the field it is about; the other keys come with the codes that have them."""

    error: str
    message: str
    status_code: int
    field: NotRequired[str | None]
    errors: NotRequired[list[Problem]]
    path: NotRequired[str]
    fromStatus: NotRequired[str]
    command: NotRequired[str]
    reason: NotRequired[str]
    currentVersion: NotRequired[int | None]
    backend: NotRequired[str]


MEANINGS = {
    400: "BAD_REQUEST: the body is not JSON or is nested too deeply; UNKNOWN_HOST: the Host header does not "
    "name this server (controller.allowed_hosts)",
    401: "UNAUTHORIZED: controller.api_key is set and X-API-Key (or ?apiKey= on reads) is missing or wrong",
    403: "CROSS_SITE: a write from another site's page (its Origin or Sec-Fetch-Site)",
    404: "NOT_FOUND: no task, node, alert or silence has this id",
    409: "INVALID_TRANSITION (fromStatus, command, reason): the task's (alert's, silence's) status does not "
    "allow it; CONFLICT "
    "(currentVersion): expectedVersion is not the stored one; ALREADY_EXISTS: the id is taken",
    413: "TOO_LARGE: the body is over the endpoint's byte limit",
    415: "UNSUPPORTED_MEDIA_TYPE: a body must be sent as Content-Type: application/json",
    422: "VALIDATION_ERROR: field names what is wrong, errors lists every problem",
    503: "BACKEND_UNAVAILABLE (backend): a store or the event bus did not answer; retry",
}

READ = (400, 401, 503)
"""What any /api read can answer besides its success."""
WRITE = (*READ, 403, 413, 415, 422)
"""What any write can answer: a body may be refused at the door or by its model."""


def error_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """The error answers an operation documents, each in the one shape."""
    return {
        status: ResponseSpec(data_container=ErrorReply, description=MEANINGS[status], generate_examples=False)
        for status in sorted(set(statuses))
    }


def body(model: type[BaseModel], description: str) -> Any:
    """A ``Body`` whose schema is ``model``'s (aliases, bounds, ``additionalProperties: false``)."""
    schema = model.model_json_schema(by_alias=True)
    definitions = schema.pop("$defs", {})
    properties = {name: _inline(value, definitions) for name, value in schema["properties"].items()}
    return Body(
        media_type=RequestEncodingType.JSON,
        title=model.__name__,
        description=description,
        schema_extra={
            "properties": properties,
            "required": schema.get("required", []),
            "additional_properties": False,
        },
    )


def _inline(schema: Any, definitions: dict[str, Any]) -> Any:
    """``{"$ref": "#/$defs/X"}`` replaced by X itself: the request models have no recursive types."""
    if isinstance(schema, dict):
        reference = schema.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            return _inline(definitions[reference.removeprefix("#/$defs/")], definitions)
        return {key: _inline(value, definitions) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_inline(item, definitions) for item in schema]
    return schema
