"""Every failure rendered in OpenAI's error format, with its status mapped from ``core.errors.ErrorKind``.

This is the only place that knows HTTP statuses for the error kinds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import AihubError, ErrorKind, InvalidRequestError, RateLimitError

logger = logging.getLogger(__name__)

STATUS_BY_KIND: dict[ErrorKind, int] = {
    ErrorKind.INVALID_REQUEST: 400,
    ErrorKind.AUTHENTICATION: 401,
    ErrorKind.PERMISSION: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.PAYLOAD_TOO_LARGE: 413,
    ErrorKind.RATE_LIMIT: 429,
    ErrorKind.INTERNAL: 500,
    ErrorKind.BAD_GATEWAY: 502,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.GATEWAY_TIMEOUT: 504,
}

# OpenAI's `error.type` values; it reports auth and not-found problems as invalid requests too.
TYPE_BY_KIND: dict[ErrorKind, str] = {
    ErrorKind.INVALID_REQUEST: "invalid_request_error",
    ErrorKind.AUTHENTICATION: "invalid_request_error",
    ErrorKind.PERMISSION: "permission_error",
    ErrorKind.NOT_FOUND: "invalid_request_error",
    ErrorKind.CONFLICT: "invalid_request_error",
    ErrorKind.PAYLOAD_TOO_LARGE: "invalid_request_error",
    ErrorKind.RATE_LIMIT: "rate_limit_error",
    ErrorKind.INTERNAL: "server_error",
    ErrorKind.BAD_GATEWAY: "server_error",
    ErrorKind.UNAVAILABLE: "server_error",
    ErrorKind.GATEWAY_TIMEOUT: "server_error",
}

GENERIC_SERVER_MESSAGE = "The server had an error while processing your request. Sorry about that!"
ERROR_CODE_SCOPE_KEY = "aihub.error_code"

# Pieces of pydantic error locations that name a union member rather than a field.
_UNION_TAGS = frozenset({"str", "int", "float", "bool", "none", "dict", "list", "function-after"})


def error_body(kind: ErrorKind, message: str, param: str | None, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": TYPE_BY_KIND[kind], "param": param, "code": code}}


def describe(exc: AihubError) -> tuple[int, dict[str, Any]]:
    """Status and body for an aihub error; 500s get a generic message (details go to the log only)."""
    status = STATUS_BY_KIND[exc.kind]
    message = GENERIC_SERVER_MESSAGE if status == 500 else exc.message
    return status, error_body(exc.kind, message, exc.param, exc.code)


def error_response(exc: AihubError, scope: Scope | None = None) -> Response:
    status, body = describe(exc)
    if status == 500:
        logger.error("request failed: %s: %s", type(exc).__name__, exc.message)
    if scope is not None:
        scope[ERROR_CODE_SCOPE_KEY] = exc.code or body["error"]["type"]
    headers = exc.headers if isinstance(exc, RateLimitError) else None  # Retry-After, x-ratelimit-*
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def _is_union_tag(part: str) -> bool:
    return "[" in part or part in _UNION_TAGS or any(c.isupper() for c in part)


def loc_to_param(loc: Sequence[int | str]) -> str | None:
    """``('messages', 0, 'content', 'list[...]', 1, 'type')`` -> ``messages[0].content[1].type``."""
    param = ""
    for part in loc:
        if isinstance(part, int):
            param += f"[{part}]"
        elif not _is_union_tag(part):
            param += f".{part}" if param else part
    return param or None


def from_validation_error(exc: ValidationError | RequestValidationError) -> InvalidRequestError:
    errors = exc.errors()
    if not errors:
        return InvalidRequestError("Invalid request body.")
    if errors[0].get("type") == "json_invalid":
        return InvalidRequestError(
            "We could not parse the JSON body of your request. The OpenAI API expects a JSON payload.",
            code="invalid_json",
        )
    # Union members each report a failure; the deepest location is the most specific one.
    first = max(errors, key=lambda error: len(error.get("loc", ())))
    loc = list(first.get("loc", ()))
    if loc and loc[0] == "body":  # FastAPI's own validation prefixes the location with `body`
        loc = loc[1:]
    param = loc_to_param(loc)
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    text = f"Invalid value for '{param}': {message}" if param else f"Invalid request: {message}"
    return InvalidRequestError(text, param=param, code="invalid_value")


async def _aihub_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AihubError)
    return error_response(exc, request.scope)


async def _validation_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(from_validation_error(exc), request.scope)


async def _http_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status == 404:
        message, code = f"Unknown request URL: {request.method} {request.url.path}.", "unknown_url"
    elif status == 405:
        message, code = (
            f"Method {request.method} is not allowed for {request.url.path}.",
            "method_not_allowed",
        )
    else:
        message, code = str(exc.detail), None
    kind = ErrorKind.INTERNAL if status >= 500 else ErrorKind.INVALID_REQUEST
    request.scope[ERROR_CODE_SCOPE_KEY] = code or "http_error"
    response = Response(
        orjson.dumps(error_body(kind, message, None, code)), status, media_type="application/json"
    )
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AihubError, _aihub_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)


class UnexpectedErrorMiddleware:
    """Turns any exception that escaped the handlers into a logged, generic 500 in OpenAI's format.

    Pure ASGI (Starlette's own server-error middleware re-raises, which leaks into server logs twice).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            logger.exception("unexpected error serving %s %s", scope.get("method"), scope.get("path"))
            if started:
                return  # headers are out; the client sees a truncated response
            if isinstance(exc, AihubError):
                response = error_response(exc, scope)
            else:
                scope[ERROR_CODE_SCOPE_KEY] = "internal_error"
                body = error_body(ErrorKind.INTERNAL, GENERIC_SERVER_MESSAGE, None, "internal_error")
                response = Response(orjson.dumps(body), 500, media_type="application/json")
            await response(scope, receive, send)
