"""Errors to HTTP statuses, in one place. Every error answer is JSON with a message; nothing a user sent
produces a 500."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.exceptions import ValidationException as LitestarValidationException
from pydantic import ValidationError as PydanticValidationError

from skalds.domain.errors import (
    AlertNotFoundError,
    AlertStateError,
    BackendUnavailableError,
    ConflictError,
    IllegalTransitionError,
    NodeNotFoundError,
    SkaldsError,
    TaskAlreadyExistsError,
    TaskNotFoundError,
    ValidationError,
)
from skalds.entrypoints.api.headers import ALWAYS

log = logging.getLogger(__name__)


def error_answer(status: int, code: str, message: str, **extra: Any) -> Response[dict[str, Any]]:
    """The one error shape (``openapi.ErrorReply``), with the security headers: an answer made here may
    never reach the ``after_request`` hook (a path no route matches)."""
    body = {"error": code, "message": message, "status_code": status, **extra}
    return Response(body, status_code=status, headers=dict(ALWAYS))


def skalds_error(request: Request[Any, Any, Any], error: SkaldsError) -> Response[dict[str, Any]]:
    match error:
        case TaskNotFoundError() | NodeNotFoundError() | AlertNotFoundError():
            return error_answer(404, "NOT_FOUND", str(error))
        case AlertStateError():
            return error_answer(
                409,
                "INVALID_TRANSITION",
                str(error),
                fromStatus=error.status,
                command=error.command,
                reason=error.reason,
            )
        case IllegalTransitionError():
            return error_answer(
                409,
                "INVALID_TRANSITION",
                str(error),
                fromStatus=str(error.from_status),
                command=str(error.command),
                reason=error.reason,
            )
        case ConflictError():
            return error_answer(409, "CONFLICT", str(error), currentVersion=error.actual_version)
        case TaskAlreadyExistsError():
            return error_answer(409, "ALREADY_EXISTS", str(error))
        case ValidationError():
            return error_answer(422, "VALIDATION_ERROR", str(error), field=error.field)
        case BackendUnavailableError():
            return error_answer(503, "BACKEND_UNAVAILABLE", str(error), backend=error.backend)
    log.exception("unexpected Skalds error", exc_info=error)
    return error_answer(500, "INTERNAL_ERROR", "an unexpected error occurred")


def pydantic_error(
    request: Request[Any, Any, Any], error: PydanticValidationError
) -> Response[dict[str, Any]]:
    problems = [
        {"field": ".".join(str(part) for part in item["loc"]) or "body", "message": item["msg"]}
        for item in error.errors()
    ]
    first = problems[0]
    return error_answer(
        422,
        "VALIDATION_ERROR",
        f"{first['field']}: {first['message']}",
        field=first["field"],
        errors=problems,
    )


QUERY_NAMES = {
    "page_size": "pageSize",
    "lifecycle_status": "lifecycleStatus",
    "class_name": "className",
    "id_contains": "id",
}
"""Python parameter name -> the wire name users wrote (upstream's camelCase query names)."""


def _wire_name(problem: dict[str, Any]) -> str:
    key = str(problem.get("key") or problem.get("source") or "request")
    return "body" if key == "data" else QUERY_NAMES.get(key, key)


def _problem_message(problem: dict[str, Any]) -> str:
    """Litestar says a missing value by quoting its name (``'data'``): say what is missing instead."""
    message = str(problem.get("message"))
    if message == f"'{problem.get('key')}'":
        return "a JSON body is required" if problem.get("key") == "data" else "required"
    return message


def litestar_validation_error(
    request: Request[Any, Any, Any], error: LitestarValidationException
) -> Response[dict[str, Any]]:
    extra = error.extra if isinstance(error.extra, list) else []
    problems = [{"field": _wire_name(e), "message": _problem_message(e)} for e in extra]
    message = f"{problems[0]['field']}: {problems[0]['message']}" if problems else error.detail
    return error_answer(
        422, "VALIDATION_ERROR", message, field=problems[0]["field"] if problems else None, errors=problems
    )


def http_error(request: Request[Any, Any, Any], error: HTTPException) -> Response[dict[str, Any]]:
    codes = {
        400: "BAD_REQUEST",
        401: "UNAUTHORIZED",
        403: "FORBIDDEN",
        404: "NOT_FOUND",
        405: "METHOD_NOT_ALLOWED",
        413: "TOO_LARGE",
    }
    status = error.status_code
    message = str(error.detail)
    if status == 413:
        limit = request.route_handler.resolve_request_max_body_size()
        shown = f" ({limit:,} bytes)" if isinstance(limit, int) else ""
        message = f"body: larger than this endpoint takes{shown}"
    answer = error_answer(status, codes.get(status, "HTTP_ERROR"), message, path=request.url.path)
    for name, value in (error.headers or {}).items():  # e.g. the Allow of a 405
        answer.headers[name] = value
    if status == 405:  # the path's whole list, as OPTIONS gives it (methods.py)
        methods = getattr(request.app, "allowed_methods", None)
        allowed = methods.for_path(request.url.path) if methods is not None else None
        if allowed:
            answer.headers["allow"] = allowed
    return answer


def unexpected_error(request: Request[Any, Any, Any], error: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    return error_answer(500, "INTERNAL_ERROR", "an unexpected error occurred; the server log has the details")


EXCEPTION_HANDLERS: Any = {
    SkaldsError: skalds_error,
    PydanticValidationError: pydantic_error,
    LitestarValidationException: litestar_validation_error,
    NotAuthorizedException: http_error,
    PermissionDeniedException: http_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
