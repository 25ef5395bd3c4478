"""Fixtures shared by the run-store tests (``test_runs_store*.py``, ``test_runs_lease_races.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from incidentfox.db import make_async_engine, session_factory


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a throwaway database (SQLite and PostgreSQL, through ``db_url``)."""
    engine = make_async_engine(db_url)
    yield session_factory(engine)
    await engine.dispose()

