"""Liveness and database reachability (no token needed)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from config_service.api.deps import SessionDep
from incidentfox.errors import error_response

router = APIRouter(tags=["health"])

HealthCheck = Callable[[], Awaitable[dict[str, Any]]]


@router.get("/health")
async def health(request: Request, session: SessionDep) -> JSONResponse:
    """200 ``{status: ok, database: ok}``, or 503 in the error shape when the database does not answer."""
    try:
        async with asyncio.timeout(5):
            await session.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        return error_response("database_unavailable", "database is not reachable", 503,
                              {"reason": type(exc).__name__})
    body: dict[str, Any] = {"status": "ok", "service": "config", "database": "ok"}
    for name, check in getattr(request.app.state, "health_checks", {}).items():
        try:
            async with asyncio.timeout(5):
                body[name] = await check()
        except (TimeoutError, OSError) as exc:
            body[name] = {"available": False, "reason": f"health check failed: {type(exc).__name__}"}
    return JSONResponse(body)
