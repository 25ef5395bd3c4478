"""One error shape for every HTTP surface: ``{"error": {"code", "message", "details"}}``.

Services raise :class:`IncidentFoxError` subclasses with a snake_case ``code``; the HTTP layer maps
them once, in :func:`install_error_handlers`. Validation errors, oversized bodies, values the
database refuses (``422 invalid_value``), an exhausted connection pool (``503 database_busy`` with
``Retry-After``) and unexpected exceptions are mapped to the same shape, and no handler echoes
request secrets back.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from incidentfox.pg_connections import server_full
from incidentfox.sqlite_writer import is_locked

log = logging.getLogger("incidentfox.errors")

DATABASE_BUSY_RETRY_AFTER_S = 1
DATABASE_UNAVAILABLE_RETRY_AFTER_S = 5


class IncidentFoxError(Exception):
    """Base of every typed error. ``status`` is the HTTP status it maps to."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details if details is not None else {}


class BadRequest(IncidentFoxError):
    status, code = 400, "bad_request"


class Unauthorized(IncidentFoxError):
    status, code = 401, "unauthorized"


class Forbidden(IncidentFoxError):
    status, code = 403, "forbidden"


class NotFound(IncidentFoxError):
    status, code = 404, "not_found"


class Conflict(IncidentFoxError):
    status, code = 409, "conflict"


class PayloadTooLarge(IncidentFoxError):
    status, code = 413, "payload_too_large"


class Unprocessable(IncidentFoxError):
    status, code = 422, "validation_error"


class IdempotencyKeyReused(Unprocessable):
    """An ``Idempotency-Key`` sent again with a different request (:mod:`serve_apps.idempotency`)."""

    code = "idempotency_key_reused"

    def __init__(self, what: str) -> None:
        super().__init__(f"this Idempotency-Key was already used for a different request; send the same "
                         f"request to retry it, or a new key to create another {what}")


def failure_reason(exc: BaseException, limit: int = 500) -> str:
    """``"<type>: <first line of its message>"``, at most ``limit`` characters: the reason a run,
    sub-agent or job records for its failure, which its team reads in the API and in Slack. A
    database error names only its driver's error class and SQLSTATE: SQLAlchemy's message carries
    the database server's address, the statement and its parameters, none of which a tenant may see."""
    if isinstance(exc, DBAPIError):
        orig = exc.orig
        code = getattr(orig, "sqlstate", None)
        what = "the database's connection limit is reached" if server_full(orig) else "the database failed the request"
        return f"{type(exc).__name__}: {what} ({type(orig).__name__}{f', sqlstate {code}' if code else ''})"[:limit]
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"[:limit]


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details if details is not None else {}}}


def error_response(code: str, message: str, status: int, details: Any = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
                 415: "unsupported_media_type", 422: "validation_error", 429: "rate_limited"}


def _clean_validation_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Drop "input" and "ctx": they can echo request bodies (and so secrets) back to the caller.
    return [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type", "")}
            for e in errors]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(IncidentFoxError)
    async def _typed(_: Request, exc: IncidentFoxError) -> JSONResponse:
        return error_response(exc.code, exc.message, exc.status, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _clean_validation_errors(exc.errors())
        if any(e["type"] == "json_invalid" for e in errors):
            return error_response("malformed_json", "request body is not valid JSON", 400, {"errors": errors})
        return error_response("validation_error", "request failed validation", 422, {"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code
        return error_response(code, message, exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(DataError)
    async def _data(_: Request, exc: DataError) -> JSONResponse:
        # A request value the database cannot store or compare: too long for its column, out of
        # range, a NUL character. The checks at each edge should have refused it; this is the
        # backstop, so the caller hears 422 instead of 500. The database's message is not logged:
        # some quote the value.
        log.warning("database refused a request value: %s (sqlstate %s)", type(exc.orig).__name__,
                    getattr(exc.orig, "sqlstate", None))
        return error_response("invalid_value", "a value in the request cannot be stored: too long, out "
                              "of range or holding a NUL character", 422)

    @app.exception_handler(PoolTimeout)
    async def _pool_exhausted(_: Request, exc: PoolTimeout) -> JSONResponse:
        # Every pooled connection stayed checked out for the pool's whole timeout: load, not a
        # fault of the request, so the answer is "retry" rather than an internal error.
        log.warning("database connection pool exhausted: %s", exc)
        return error_response("database_busy", "the database is busy; retry shortly", 503,
                              headers={"Retry-After": str(DATABASE_BUSY_RETRY_AFTER_S)})

    @app.exception_handler(OperationalError)
    async def _database_down(_: Request, exc: OperationalError) -> JSONResponse:
        # The database refused or lost the connection (down, restarting, failing over, SQLite's
        # write lock held past its busy timeout): nothing the request did, so "retry", not 500. Only
        # the driver's class and SQLSTATE are logged: its message can name hosts and databases.
        log.warning("database unavailable: %s (sqlstate %s)", type(exc.orig).__name__,
                    getattr(exc.orig, "sqlstate", None))
        busy = is_locked(exc) or server_full(exc.orig)   # the driver's words, never a statement's values
        return error_response("database_busy" if busy else "database_unavailable",
                              "the database is busy; retry shortly" if busy else
                              "the database is unavailable; retry shortly", 503,
                              headers={"Retry-After": str(DATABASE_UNAVAILABLE_RETRY_AFTER_S)})

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error: %s", type(exc).__name__)
        return error_response("internal_error", "internal server error", 500)
