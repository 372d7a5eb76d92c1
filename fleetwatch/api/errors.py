"""One error body for every 4xx/5xx answer, its OpenAPI schema, and the handlers that build it.

Every error looks like::

    {"error": {"code": "validation_error", "message": "1 invalid field",
               "details": [{"loc": ["query", "limit"], "msg": "must be <= 1000"}]}}

Routers raise :class:`ApiError` (or ``fastapi.HTTPException``) and declare the codes they answer
with ``responses=error_responses(404, 409)``. Unexpected exceptions become a 500 whose body names
no internals; the traceback goes to the log only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    """One problem: where (a path into the request, e.g. ``["query", "limit"]``) and what."""

    loc: list[str | int] = Field(default_factory=list, examples=[["query", "limit"]])
    msg: str = Field(..., examples=["Input should be less than or equal to 1000"])


class ErrorBody(BaseModel):
    code: str = Field(..., description="stable machine-readable code", examples=["not_found"])
    message: str = Field(..., description="human-readable summary", examples=["device not found"])
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    """The body of every 4xx/5xx answer."""

    error: ErrorBody


# Default code and summary per status, used by handlers and documented in the OpenAPI.
_CODES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "the request is malformed"),
    401: ("unauthenticated", "a valid bearer token is required"),
    403: ("forbidden", "the token lacks the scope this operation needs"),
    404: ("not_found", "no such resource"),
    405: ("method_not_allowed", "method not allowed on this path"),
    409: ("conflict", "the request conflicts with the current state"),
    413: ("payload_too_large", "the request body is too large"),
    415: ("unsupported_media_type", "the body's content type is not accepted here"),
    422: ("validation_error", "the request has invalid fields"),
    429: ("rate_limited", "too many requests for this token; retry after the given delay"),
    500: ("internal_error", "internal error; the server logged it"),
    503: ("unavailable", "a dependency is unavailable; retry later"),
}


def code_for(status: int) -> str:
    if status in _CODES:
        return _CODES[status][0]
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_")
    except ValueError:
        return "error"


class ApiError(Exception):
    """An error answer: status, stable code, message and optional details (loc, msg)."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        code: str | None = None,
        details: Sequence[ErrorDetail | dict[str, Any]] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code or code_for(status_code)
        self.message = message
        self.details = [d if isinstance(d, ErrorDetail) else ErrorDetail(**d) for d in details]
        self.headers = headers or {}


def error_body(
    status_code: int,
    message: str,
    *,
    code: str | None = None,
    details: Sequence[ErrorDetail] = (),
) -> dict[str, Any]:
    body = ErrorResponse(
        error=ErrorBody(code=code or code_for(status_code), message=message, details=list(details))
    )
    return body.model_dump()


def error_json(
    status_code: int,
    message: str,
    *,
    code: str | None = None,
    details: Sequence[ErrorDetail] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(status_code, message, code=code, details=details),
        status_code=status_code,
        headers=headers,
    )


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the given status codes, all with :class:`ErrorResponse`.

    ``@router.get("/x/{id}", responses=error_responses(404))``. 401, 403, 422 and 500 are added
    to every scoped operation by the app, so routers list only what is specific to them.
    """
    out: dict[int | str, dict[str, Any]] = {}
    for status in codes:
        code, summary = _CODES.get(status, (code_for(status), HTTPStatus(status).phrase.lower()))
        out[status] = {
            "model": ErrorResponse,
            "description": summary[0].upper() + summary[1:],
            "content": {
                "application/json": {
                    "example": {"error": {"code": code, "message": summary, "details": []}}
                }
            },
        }
    return out


def _validation_details(exc: RequestValidationError) -> list[ErrorDetail]:
    details = []
    for err in exc.errors():
        loc = [p if isinstance(p, int) else str(p) for p in err.get("loc", ())]
        details.append(ErrorDetail(loc=loc, msg=str(err.get("msg", "invalid"))))
    return details


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_json(
        exc.status_code, exc.message, code=exc.code, details=exc.details, headers=exc.headers
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    detail = exc.detail
    message = detail if isinstance(detail, str) else _CODES.get(status, ("", "error"))[1]
    return error_json(status, message, headers=dict(exc.headers or {}))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = _validation_details(exc)
    where = ", ".join(".".join(str(p) for p in d.loc) for d in details[:5])
    n = len(details)
    message = f"{n} invalid field{'s' if n != 1 else ''}: {where}" if where else "invalid request"
    return error_json(422, message, details=details)


def install_error_handlers(app: FastAPI) -> None:
    """Make every error answer of ``app`` an :class:`ErrorResponse`."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(InternalErrorMiddleware)


class InternalErrorMiddleware:
    """Turn an unhandled exception into a 500 :class:`ErrorResponse`; log the traceback only.

    Starlette's own handler re-raises after answering; this one answers and stops, so a server
    never shows a client more than "internal error".
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
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:  # too late for an error body; the connection is cut
                raise
            response = error_json(500, _CODES[500][1])
            await response(scope, receive, send)
