"""Liveness and database reachability (no token needed)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from config_service.api.deps import SessionDep
from incidentfox.errors import error_response

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(session: SessionDep) -> JSONResponse:
    """200 ``{status: ok, database: ok}``, or 503 in the error shape when the database does not answer."""
    try:
        async with asyncio.timeout(5):
            await session.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        return error_response("database_unavailable", "database is not reachable", 503,
                              {"reason": type(exc).__name__})
    return JSONResponse({"status": "ok", "service": "config", "database": "ok"})
