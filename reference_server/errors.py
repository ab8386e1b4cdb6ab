"""Errors in the documented envelope: ``{"error": {"message", "type"}}`` (002), never a traceback."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = ["ApiError", "envelope", "install_error_handlers"]

#: Default ``type`` per status, from the Fortytwo fragment (002) and our catalogue's decisions.
DEFAULT_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_exceeded",
    500: "internal_error",
    503: "service_unavailable",
}


class ApiError(Exception):
    """An error answer: status, envelope type, message and extra headers (``Retry-After``)."""

    def __init__(
        self,
        status: int,
        message: str,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type or DEFAULT_TYPES.get(status, "invalid_request_error")
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        return JSONResponse(envelope(self.message, self.error_type), self.status, headers=self.headers)


def envelope(message: str, error_type: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type}}


def _json_safe(errors: list[Any]) -> list[dict[str, Any]]:
    # pydantic puts the offending input and exception objects in ``ctx``/``input``: keep what the
    # HTTPValidationError schema names (loc, msg, type) so nothing unserialisable or secret leaks.
    return [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in errors
    ]


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _json_safe(list(exc.errors()))
    if any(e["type"] == "json_invalid" for e in errors):
        # Malformed JSON is a 400 (catalogue ERR-003); schema violations are 422 (ERR-004).
        return ApiError(400, "Request body is not valid JSON").response()
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"] if p != "body") or "body"
    body = {
        "detail": errors,
        **envelope(f"Invalid request: {where}: {first['msg']}", "invalid_request_error"),
    }
    return JSONResponse(body, 422)


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    message = "Not found" if status == 404 else str(exc.detail)
    return JSONResponse(
        envelope(message, DEFAULT_TYPES.get(status, "invalid_request_error")),
        status,
        headers=getattr(exc, "headers", None),
    )


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    # The access log records the exception class; the client gets the envelope, never a traceback.
    return JSONResponse(envelope("Internal server error", "internal_error"), 500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
